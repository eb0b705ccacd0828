package ui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"
)

const (
	watcherName  = "org.kde.StatusNotifierWatcher"
	watcherPath  = "/StatusNotifierWatcher"
	notifierName = "org.freedesktop.Notifications"
	notifierPath = "/org/freedesktop/Notifications"
	busTimeout   = 5 * time.Second
	itemPath     = "/StatusNotifierItem" // where systray exports the item
)

// session is the desktop around the tray: on Linux a private session bus
// connection for notifications and for watching the StatusNotifierWatcher.
// It never shares systray's connection, so that its signals cannot reach
// systray's handlers.
type session interface {
	// notify shows a desktop notification; key groups notifications so
	// that a newer one replaces an older one with the same key. Where no
	// notification service answers it does nothing.
	notify(ctx context.Context, key, summary, body string)
	close()
}

type linuxSession struct {
	conn *dbus.Conn
	log  *slog.Logger
	done chan struct{}

	mu       sync.Mutex        // guards replaces
	replaces map[string]uint32 // last notification id per key
}

// openSession checks that there is a graphical session (a display and a
// reachable session bus) and connects to the bus. Probing first matters:
// systray crashes when it quits without a bus.
func openSession(log *slog.Logger) (session, error) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return nil, fmt.Errorf("%w: no display (DISPLAY and WAYLAND_DISPLAY are empty)", ErrNoTray)
	}
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		return nil, fmt.Errorf("%w: no session bus (DBUS_SESSION_BUS_ADDRESS is empty)", ErrNoTray)
	}
	conn, err := connectBus(addr, busTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: session bus: %w", ErrNoTray, err)
	}
	s := &linuxSession{conn: conn, log: log, done: make(chan struct{}), replaces: map[string]uint32{}}
	if err := s.watchWatcher(); err != nil {
		log.Warn("tray: cannot follow the StatusNotifierWatcher; the icon may not appear if the panel restarts", "err", err)
	}
	return s, nil
}

// connectBus connects, authenticates and says Hello within timeout. The
// connection's own context must outlive the probe, so a slow bus is left
// to finish (and is closed) in the background.
func connectBus(addr string, timeout time.Duration) (*dbus.Conn, error) {
	type result struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dbus.Connect(addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-time.After(timeout):
		go func() {
			if r := <-ch; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("no answer in %v", timeout)
	}
}

// runNative runs systray on the calling goroutine until quit is closed. On
// Linux systray needs no thread of its own (its D-Bus connection serves the
// menu), so it starts on an external loop and this goroutine waits; started
// runs once the item is exported.
func runNative(onReady, onExit, started func(), quit <-chan struct{}) {
	start, end := systray.RunWithExternalLoop(onReady, onExit)
	start()
	started()
	<-quit
	end()
}

// watchWatcher registers the item again whenever a StatusNotifierWatcher
// appears (a panel starting or restarting). systray tries this too, but its
// loop stops at the first unrelated signal on its connection; this one has
// a connection of its own.
func (s *linuxSession) watchWatcher() error {
	if err := s.conn.AddMatchSignal(
		dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, watcherName),
	); err != nil {
		return fmt.Errorf("watch %s: %w", watcherName, err)
	}
	ch := make(chan *dbus.Signal, 8)
	s.conn.Signal(ch)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case sig, ok := <-ch:
				if !ok {
					return
				}
				if sig.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(sig.Body) < 3 {
					continue
				}
				name, _ := sig.Body[0].(string)
				owner, _ := sig.Body[2].(string)
				if name == watcherName && owner != "" {
					s.register()
				}
			}
		}
	}()
	return nil
}

// register registers systray's item with the watcher exactly as systray
// does: the item's path, sent from systray's own connection (the shared
// session bus connection), so that a watcher sees one item, not two.
func (s *linuxSession) register() {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	conn, err := dbus.SessionBus() // systray's connection while the tray runs
	if err != nil {
		s.log.Warn("tray: register with the StatusNotifierWatcher", "err", err)
		return
	}
	call := conn.Object(watcherName, watcherPath).CallWithContext(ctx, watcherName+".RegisterStatusNotifierItem", 0, itemPath)
	if call.Err != nil {
		s.log.Warn("tray: register with the StatusNotifierWatcher", "err", call.Err)
		return
	}
	s.log.Debug("tray: registered with the StatusNotifierWatcher")
}

// notify calls org.freedesktop.Notifications.Notify; see the Desktop
// Notifications Specification, https://specifications.freedesktop.org/notification-spec/latest/protocol.html
func (s *linuxSession) notify(ctx context.Context, key, summary, body string) {
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	s.mu.Lock()
	replaces := s.replaces[key]
	s.mu.Unlock()
	var id uint32
	err := s.conn.Object(notifierName, notifierPath).CallWithContext(ctx, notifierName+".Notify", 0,
		"ncagent", replaces, "dialog-password", summary, body, []string{},
		map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(1))}, int32(-1)).Store(&id)
	if err != nil {
		s.log.Debug("tray: no desktop notification", "err", err)
		return
	}
	s.mu.Lock()
	s.replaces[key] = id
	s.mu.Unlock()
}

func (s *linuxSession) close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.conn.Close()
}
