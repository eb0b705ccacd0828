package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestWrite: the file gets the new content and its mode; a write that
// fails leaves the old file and no temporary file; a missing directory is
// made with dirPerm, or is an error with 0.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "autostart.desktop")
	if err := Write(path, 0o644, 0, Bytes([]byte("x"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing directory with dirPerm 0: got %v, want not exist", err)
	}
	if err := Write(path, 0o644, 0o755, Bytes([]byte("one"))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(path, 0o644, 0o755, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing write: got %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("after a failed write: got %q, want the old content", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory after a failed write: %d entries, want only the file", len(entries))
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("mode: got %v, %v; want 0644", fi.Mode().Perm(), err)
		}
		if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o755 {
			t.Errorf("directory mode: got %v, want 0755", fi.Mode().Perm())
		}
	}
}
