// Package atomicfile replaces a file so that a reader, or a crash at any
// moment, sees the old file or the new one, never a part of either: the
// one atomic write of ncagent (the agent's config, state and file store,
// its chain times, the autostart files).
//
// The new content goes to a temporary file in the same directory, which
// is synced, given its mode, renamed over the path, and the directory is
// synced so the rename is durable (Windows cannot sync a directory;
// MoveFileEx is durable once it returns). On any error the temporary file
// is removed and the old file is left as it was.
package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with what write produces, as a file of mode perm.
// A missing directory is made with mode dirPerm (0 leaves a missing
// directory an error).
func Write(path string, perm, dirPerm fs.FileMode, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if dirPerm != 0 {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if perm != 0o600 {
		if err := tmp.Chmod(perm); err != nil {
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// Bytes is a write function for Write that writes data.
func Bytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}
