//go:build !unix

package agent

import (
	"fmt"
	"os"
)

// checkPrivateDir checks that dir is a real directory. Windows keeps the
// user's profile directories private by their ACL.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}
