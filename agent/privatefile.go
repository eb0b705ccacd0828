package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Private files: the file store's files are the user's alone. They are
// read only when they are regular files (not symlinks), owned by the user,
// without group or world access, in a directory that is the same; they are
// replaced atomically and never overwritten when unsafe.

// checkPrivateDir checks that dir is a directory (not a symlink) owned by
// the user with no group or world access. With create, a missing dir is
// made 0700.
func checkPrivateDir(dir string, create bool) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w: not a directory", dir, ErrFileStoreUnsafe)
	}
	return checkPrivate(dir, fi)
}

// readPrivate reads path, at most maxFileStoreSize bytes, after checking
// it is a private regular file; the check is repeated on the open file so
// a swap between the two is refused. A missing file wraps fs.ErrNotExist.
func readPrivate(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrFileStoreUnsafe)
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, err
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	ofi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, ofi) {
		return nil, fmt.Errorf("%s: %w: it changed while being opened", path, ErrFileStoreUnsafe)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileStoreSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileStoreSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrFileStoreDamaged, maxFileStoreSize)
	}
	return data, nil
}
