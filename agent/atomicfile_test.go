package agent

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteAtomic: the one atomic write of the agent (config, state, file
// store). A new file is 0600 in a directory made 0700; a failed write
// leaves the old file and no temporary one; with private, a symlink or a
// file others can read is refused and left as it is, and the directory
// must already be private; without, the file is replaced.
func TestWriteAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "accounts.toml")
	if err := writeAtomic(path, false, writeBytes([]byte("one"))); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, path, 0o600)
	boom := errors.New("boom")
	if err := writeAtomic(path, false, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write: got %v, want boom", err)
	}
	checkFiles(t, dir, path, "one", "accounts.toml")

	// private: refuses what is not the user's private regular file.
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("other"), 0o600)
	link := filepath.Join(dir, "secrets.age")
	os.Symlink(other, link)
	if err := writeAtomic(link, true, writeBytes([]byte("x"))); !errors.Is(err, ErrFileStoreUnsafe) {
		t.Fatalf("private over a symlink: got %v, want ErrFileStoreUnsafe", err)
	}
	checkFiles(t, dir, other, "other", "accounts.toml", "other", "secrets.age")
	os.Chmod(path, 0o644)
	if err := writeAtomic(path, true, writeBytes([]byte("x"))); !errors.Is(err, ErrFileStoreUnsafe) {
		t.Fatalf("private over a 0644 file: got %v, want ErrFileStoreUnsafe", err)
	}
	checkFiles(t, dir, path, "one", "accounts.toml", "other", "secrets.age")
	// Without private the caller did not ask: the file is replaced.
	if err := writeAtomic(path, false, writeBytes([]byte("two"))); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
	checkFiles(t, dir, path, "two", "accounts.toml", "other", "secrets.age")
	if err := writeAtomic(filepath.Join(t.TempDir(), "new", "secrets.age"), true, writeBytes(nil)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("private in a missing dir: got %v, want not exist", err)
	}
	os.Chmod(dir, 0o755)
	if err := writeAtomic(path, true, writeBytes(nil)); !errors.Is(err, ErrFileStoreUnsafe) {
		t.Fatalf("private in a 0755 dir: got %v, want ErrFileStoreUnsafe", err)
	}
}

// checkFiles checks path holds want and dir holds exactly names.
func checkFiles(t *testing.T, dir, path, want string, names ...string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s: %q, %v; want %q", path, got, err, want)
	}
	entries, _ := os.ReadDir(dir)
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	if !slices.Equal(have, names) {
		t.Fatalf("%s holds %q, want %q (no temporary file left)", dir, have, names)
	}
}
