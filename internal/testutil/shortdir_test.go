package testutil

import (
	"os"
	"testing"
)

func TestShortDir(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = ShortDir(t)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("got %v, %v; want a 0700 directory", fi, err)
		}
		if len(dir) > 64 {
			t.Errorf("path %q is %d bytes, want short", dir, len(dir))
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after cleanup: got %v, want the directory removed", err)
	}
}
