//go:build !linux && !windows && !(darwin && cgo)

package ui

import (
	"context"
	"fmt"
	"runtime"
)

// StartTray returns an error wrapping ErrNoTray: this platform or build has
// no tray (macOS needs cgo for its menu bar: build with CGO_ENABLED=1 on a
// Mac).
func StartTray(ctx context.Context, b Backend, opts TrayOptions) (stop func(), err error) {
	return nil, errNoTrayHere()
}

// Tray is a tray ready to show; this build has none.
type Tray struct{}

// NewTray returns an error wrapping ErrNoTray: this platform or build has
// no tray.
func NewTray(ctx context.Context, b Backend, opts TrayOptions) (*Tray, error) {
	return nil, errNoTrayHere()
}

// Run does nothing: there is no tray in this build.
func (*Tray) Run() {}

// Stop does nothing: there is no tray in this build.
func (*Tray) Stop() {}

func errNoTrayHere() error {
	return fmt.Errorf("%w: not available on %s in this build", ErrNoTray, runtime.GOOS)
}
