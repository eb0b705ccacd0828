//go:build darwin && cgo

package ui

import (
	"context"
	"log/slog"
	"runtime"

	"fyne.io/systray"
)

// session is the desktop around the tray. On macOS there is always one for
// a logged-in user, and no notifications are sent (yet).
type session interface {
	notify(ctx context.Context, key, summary, body string)
	close()
}

type darwinSession struct{}

func (darwinSession) notify(context.Context, string, string, string) {}
func (darwinSession) close()                                         {}

func openSession(*slog.Logger) (session, error) { return darwinSession{}, nil }

// runNative runs the menu bar's run loop (systray.Run: NSApplication) on
// the calling goroutine until quit is closed. AppKit requires the process's
// main thread: the caller is the main goroutine, locked to it by an init
// function of package main; the lock here only keeps it there.
func runNative(onReady, onExit, started func(), quit <-chan struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	go func() {
		<-quit
		systray.Quit()
	}()
	started()
	systray.Run(onReady, onExit)
}
