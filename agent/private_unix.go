//go:build unix

package agent

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivate checks fi (from Lstat of path): owned by the user, no group
// or world access.
func checkPrivate(path string, fi fs.FileInfo) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s: %w: mode %04o allows others (chmod go-rwx it if it is yours)", path, ErrFileStoreUnsafe, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: %w: owner unknown", path, ErrFileStoreUnsafe)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%s: %w: owned by uid %d, not you (uid %d)", path, ErrFileStoreUnsafe, st.Uid, os.Getuid())
	}
	return nil
}
