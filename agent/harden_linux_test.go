package agent

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/internal/testutil"
)

const hardenHelperEnv = "NCAGENT_HARDEN_HELPER"

// TestHardenHelper is the process TestHarden looks at: with
// NCAGENT_HARDEN_HELPER set it hardens itself (or not, for "plain"),
// prints its pid and waits for its stdin to close.
func TestHardenHelper(t *testing.T) {
	mode := os.Getenv(hardenHelperEnv)
	if mode == "" {
		t.Skip("a helper process of TestHarden")
	}
	if mode == "harden" {
		if err := Harden(); err != nil {
			t.Fatal(err)
		}
	}
	os.Stdout.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	io.Copy(io.Discard, os.Stdin)
}

// TestHarden runs a hardened process as uid 65534 and tries to read its
// environment from another process of the same uid, as a same-user
// attacker would read its memory: refused, and no core file allowed. The
// unhardened control shows the read would work otherwise.
func TestHarden(t *testing.T) {
	setpriv := testutil.Setpriv(t, "running")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.ShortDir(t)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "agent.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups"}

	for _, tc := range []struct {
		mode     string
		readable bool
		core     string
	}{{"plain", true, ""}, {"harden", false, "0"}} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command(setpriv, append(nobody, bin, "-test.run=^TestHardenHelper$")...)
			cmd.Env = []string{hardenHelperEnv + "=" + tc.mode, "SECRET_MARKER=in-memory-secret"}
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); cmd.Wait() }()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("helper: %v", err)
			}
			pid := strings.TrimSpace(line)
			out, err := exec.Command(setpriv, append(nobody, "cat", "/proc/"+pid+"/environ")...).CombinedOutput()
			if got := err == nil && strings.Contains(string(out), "SECRET_MARKER"); got != tc.readable {
				t.Errorf("another process of uid 65534 reads /proc/%s/environ: got %v, want %v", pid, got, tc.readable)
			}
			if tc.core != "" {
				limits, _ := os.ReadFile("/proc/" + pid + "/limits")
				for _, l := range strings.Split(string(limits), "\n") {
					if strings.HasPrefix(l, "Max core file size") {
						if f := strings.Fields(l); len(f) < 6 || f[4] != tc.core || f[5] != tc.core {
							t.Errorf("core limit: got %q, want soft and hard %s", l, tc.core)
						}
					}
				}
			}
		})
	}
}
