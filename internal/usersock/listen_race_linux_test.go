package usersock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// TestSocketDirSymlinkRace is another uid swapping a symlink in and out
// where the agent creates its socket directory (a sticky, world-writable
// dir like /tmp without XDG_RUNTIME_DIR), pointing at a directory of the
// agent's user: however the race falls, that directory's mode must never
// change.
func TestSocketDirSymlinkRace(t *testing.T) {
	setpriv := testutil.Setpriv(t, "racing")
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("skipping: perl not found")
	}
	tmp := shortDir(t)
	os.Chmod(tmp, 0o1777) // like /tmp
	victim := filepath.Join(shortDir(t), "public")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(victim), 0o755)
	dir := filepath.Join(tmp, "ncagent-0")
	stop := filepath.Join(tmp, "stop")

	// symlink and unlink as fast as perl goes, until stop exists.
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", perl, "-e",
		`my ($t, $l, $s) = @ARGV; until (-e $s) { symlink($t, $l); unlink($l); }`, victim, dir, stop)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(stop, nil, 0o644)
		cmd.Wait()
	}()

	deadline := time.Now().Add(8 * time.Second)
	var made, refused int
	for i := 0; time.Now().Before(deadline); i++ {
		ln, err := Listen(filepath.Join(dir, "agent.sock"))
		if err == nil {
			made++
			ln.Close()
			os.RemoveAll(dir)
		} else {
			refused++
		}
		fi, err := os.Stat(victim)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Fatalf("after %d tries: the victim directory's mode changed to %04o, want 0755", i+1, got)
		}
	}
	t.Logf("%d listens, %d refused", made, refused)
	if made == 0 || refused == 0 {
		t.Errorf("the race never fell both ways (%d listens, %d refused): the test proves nothing", made, refused)
	}
}

// TestSquattedSocketDirSaysWhatToDo: /tmp/ncagent-<uid> created first by
// another user is refused with a hint at the way out.
func TestSquattedSocketDirSaysWhatToDo(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: chown to another uid needs root")
	}
	dir := filepath.Join(shortDir(t), "ncagent-0")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 65534, 65534)
	_, err := Listen(filepath.Join(dir, "agent.sock"))
	if !errors.Is(err, ErrSocketDirOwner) || !strings.Contains(err.Error(), "have it removed, or set XDG_RUNTIME_DIR or NCAGENT_SOCKET") {
		t.Errorf("Listen: got %v, want ErrSocketDirOwner with what to do", err)
	}
}
