package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSetpriv: the path Setpriv gives runs a command as uid 65534 (the
// test skips, as its callers do, without root or setpriv).
func TestSetpriv(t *testing.T) {
	path := Setpriv(t, "checking")
	out, err := exec.Command(path, "--reuid=65534", "--regid=65534", "--clear-groups", "id", "-u").Output()
	if err != nil || strings.TrimSpace(string(out)) != "65534" {
		t.Errorf("setpriv id -u: got %q, %v; want 65534", out, err)
	}
}
