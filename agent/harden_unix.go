//go:build unix && !linux

package agent

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// harden sets RLIMIT_CORE 0. macOS's PT_DENY_ATTACH would also stop
// debuggers the user runs on purpose and is trivially undone; the BSDs'
// procctl tracing controls are left for later.
func harden() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("harden: setrlimit core 0: %w", err)
	}
	return nil
}
