//go:build unix

package agent

import (
	"os"
	"syscall"
)

// openNoBlock opens path for reading without waiting for a FIFO's writer.
// O_NONBLOCK changes nothing for the regular files readBounded reads.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
