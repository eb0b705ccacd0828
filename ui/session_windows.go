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

// startNative runs systray on a thread of its own: a Windows message loop
// must run on the thread that created the window, so systray.Run (register
// and loop) goes on one locked goroutine.
func startNative(onReady, onExit func()) (end func(), err error) {
	go func() {
		runtime.LockOSThread()
		systray.Run(onReady, onExit)
	}()
	return systray.Quit, nil
}
