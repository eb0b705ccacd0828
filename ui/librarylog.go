//go:build linux || windows

package ui

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"sync"
)

// libraryLog receives what fyne.io/systray prints with the standard log
// package and says it in the agent's log instead: a missing
// StatusNotifier host (a desktop without a tray area, GNOME without the
// AppIndicator extension) in one plain line, once; anything else as a
// warning, prefixed.
type libraryLog struct {
	log *slog.Logger

	mu   sync.Mutex // guards said
	said bool       // the no-host line was logged
}

// routeLibraryLog sends the standard logger's output to l. It does
// nothing when l writes through the standard logger itself (slog's
// default), which would loop.
func routeLibraryLog(l *slog.Logger) {
	if l.Handler() == slog.Default().Handler() {
		return
	}
	log.SetFlags(0)
	log.SetOutput(&libraryLog{log: l})
}

func (w *libraryLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(bytes.TrimRight(p, "\n")), "\n") {
		switch {
		case strings.Contains(line, "failed to register"):
			w.mu.Lock()
			first := !w.said
			w.said = true
			w.mu.Unlock()
			if first {
				w.log.Info("tray: no StatusNotifier host on this desktop, so no icon yet: it appears when a panel that shows tray icons starts (on GNOME: the AppIndicator extension)")
			}
		case line != "":
			w.log.Warn("tray: " + strings.TrimPrefix(line, "systray error: "))
		}
	}
	return len(p), nil
}
