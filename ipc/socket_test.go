//go:build unix

package ipc

// The server on a real socket: a second agent, a client of another uid,
// socket activation. The socket itself is tested in internal/usersock.

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

func TestSecondAgentRefused(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	ln, err := Listen(ts.path)
	if !errors.Is(err, ErrAlreadyRunning) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("second Listen: got %v, want ErrAlreadyRunning", err)
	}
	if _, err := NewClient(ts.path).Status(context.Background()); err != nil {
		t.Errorf("first server after the second Listen: %v", err)
	}
}

// TestForeignUIDRefused runs a client as uid 65534 against the agent. The
// directory and socket are opened up for this test only, so the kernel
// lets it connect and the peer check is what refuses it.
func TestForeignUIDRefused(t *testing.T) {
	setpriv := testutil.Setpriv(t, "running a client")
	b := &fakeBackend{}
	ts := startServer(t, b, ServerOptions{})
	os.Chmod(filepath.Dir(filepath.Dir(ts.path)), 0o711)
	os.Chmod(filepath.Dir(ts.path), 0o711)
	os.Chmod(ts.path, 0o666)

	// The test binary sits in a 0700 build dir; copy it where uid 65534 can
	// execute it.
	bin := filepath.Join(shortDir(t), "ipc.test")
	os.Chmod(filepath.Dir(bin), 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, bin, 0o755)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin)
	cmd.Env = []string{envHelper + "=rawclient", EnvSocket + "=" + ts.path}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got, "connected uid=65534 bytes=0 ") {
		t.Errorf("helper: got %q, want a connection as uid 65534 that received 0 bytes", got)
	}
	if n := b.Calls(); n != 0 {
		t.Errorf("backend called %d times, want 0", n)
	}
	if !eventually(func() bool {
		return strings.Contains(ts.logs.String(), "level=WARN msg=\"ipc: refused connection\" peer_uid=65534")
	}) {
		t.Errorf("refusal not logged at warn with peer uid:\n%s", ts.logs.String())
	}
}

func copyFile(t *testing.T, from, to string, mode fs.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSocketActivationEndToEnd passes a listening socket as fd 3 to a child
// (the test binary as an agent) with LISTEN_FDS=1, as systemd does.
func TestSocketActivationEndToEnd(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close() // the child holds the socket from now on
	defer os.Remove(path)

	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envHelper+"=activated", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := NewClient(path).Status(ctx)
	stdin.Close()
	werr := cmd.Wait()
	if err != nil {
		t.Fatalf("status: %v\nchild output:\n%s", err, out.String())
	}
	if werr != nil {
		t.Errorf("child: %v\n%s", werr, out.String())
	}
	if st.Version != "activated" || st.PID != cmd.Process.Pid {
		t.Errorf("got version %q pid %d, want activated %d", st.Version, st.PID, cmd.Process.Pid)
	}
}
