package ui

import (
	"context"
	"log/slog"
	"runtime"

	"fyne.io/systray"
)

// session is the desktop around the tray. On Windows there is always one
// for an interactive user, and no notifications are sent (yet).
type session interface {
	notify(ctx context.Context, key, summary, body string)
	close()
}

type windowsSession struct{}

func (windowsSession) notify(context.Context, string, string, string) {}
func (windowsSession) close()                                         {}

func openSession(*slog.Logger) (session, error) { return windowsSession{}, nil }

// runNative runs systray's message loop on the calling goroutine until
// quit is closed: a Windows message loop must run on the thread that
// created the window, so systray.Run (register and loop) runs with the
// goroutine locked to its thread.
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
