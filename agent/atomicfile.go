package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeAtomic replaces path with what write produces, so that a reader or
// a crash sees the old file or the new one, never a part of either: a
// temporary file in the same directory (0600: os.CreateTemp), fsync,
// rename over path, fsync of the directory. It is the one atomic write of
// the agent: config and state files, and the file store.
//
// With private (the file store), the directory must exist and be private
// (checkPrivateDir), and an existing path that is not a regular file of
// the user without group or world access is refused with
// ErrFileStoreUnsafe and left as it is. Without, a missing directory is
// made 0700 and whatever is at path is replaced.
func writeAtomic(path string, private bool, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	if private {
		if err := checkReplaceable(path); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
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

// checkReplaceable checks that path is in a private directory and, when
// it exists, is a private regular file of the user.
func checkReplaceable(path string) error {
	if err := checkPrivateDir(filepath.Dir(path), false); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w: not a regular file", path, ErrFileStoreUnsafe)
	}
	return checkPrivate(path, fi)
}

// writeBytes is a write function for writeAtomic that writes data.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}
