package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Setpriv returns the path of setpriv(1), which the tests of "another user
// cannot" claims use to run a process as uid 65534 (setpriv --reuid=65534
// --regid=65534 --clear-groups ...). It skips tb, saying why, unless the
// test runs as root with setpriv installed (Debian: util-linux).
func Setpriv(tb testing.TB, as string) string {
	tb.Helper()
	if os.Getuid() != 0 {
		tb.Skipf("skipping: %s as another uid needs root", as)
	}
	path, err := exec.LookPath("setpriv")
	if err != nil {
		tb.Skip("skipping: setpriv not found (Debian: util-linux)")
	}
	return path
}
