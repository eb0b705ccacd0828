package testutil

import (
	"os"
	"testing"
)

// ShortDir returns a fresh 0700 directory directly under os.TempDir,
// removed at cleanup: its path is short enough for a Unix socket's
// sun_path (t.TempDir can exceed its 108 bytes), and no 0700 parent of
// t.TempDir's stands between it and another user the test opens it to
// with a chmod.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
