//go:build windows || (darwin && cgo)

package ui

import (
	"context"
	"log/slog"
	"runtime"

	"fyne.io/systray"
)

// session is the desktop around the tray. On Windows and macOS there is
// always one for a logged-in, interactive user, and no notifications are
// sent (yet).
type session interface {
	notify(ctx context.Context, key, summary, body string)
	close()
}

type plainSession struct{}

func (plainSession) notify(context.Context, string, string, string) {}
func (plainSession) close()                                         {}

func openSession(*slog.Logger) (session, error) { return plainSession{}, nil }

// runNative runs systray's loop on the calling goroutine until quit is
// closed. On Windows the message loop must run on the thread that created
// the window; on macOS AppKit (systray.Run: NSApplication) requires the
// process's main thread, which the caller is: the main goroutine, locked
// to it by an init function of package main. The lock here keeps the
// goroutine on its thread in both cases.
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
