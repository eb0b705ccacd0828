//go:build !linux && !windows

package ui

import (
	"context"
	"fmt"
	"runtime"
)

// StartTray returns an error wrapping ErrNoTray: this platform or build has
// no tray. On macOS the menu bar needs the process's main thread, which
// the agent uses; see ui/README-section.md.
func StartTray(ctx context.Context, b Backend, opts TrayOptions) (stop func(), err error) {
	return nil, fmt.Errorf("%w: not available on %s in this build", ErrNoTray, runtime.GOOS)
}
