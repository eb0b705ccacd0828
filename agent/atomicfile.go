package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ncagent/ncagent/internal/atomicfile"
)

// writeAtomic replaces path with what write produces, as a 0600 file,
// with atomicfile.Write: a reader or a crash sees the old file or the new
// one. It is how the agent writes its config and state files, its chain
// times and the file store.
//
// With private (the file store), the directory must exist and be private
// (checkPrivateDir), and an existing path that is not a regular file of
// the user without group or world access is refused with
// ErrFileStoreUnsafe and left as it is. Without, a missing directory is
// made 0700 and whatever is at path is replaced.
func writeAtomic(path string, private bool, write func(io.Writer) error) error {
	dirPerm := fs.FileMode(0o700)
	if private {
		if err := checkReplaceable(path); err != nil {
			return err
		}
		dirPerm = 0
	}
	return atomicfile.Write(path, 0o600, dirPerm, write)
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
var writeBytes = atomicfile.Bytes
