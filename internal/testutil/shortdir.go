package testutil

import (
	"os"
	"testing"
)

// ShortDir returns a fresh 0700 directory, removed at cleanup, with a path
// short enough for a Unix socket's sun_path (t.TempDir can exceed its 108
// bytes).
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
