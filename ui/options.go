package ui

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// TrayOptions configures StartTray. The zero value works: no browser
// opening (Open Nextcloud and Add account… hidden), no Start at login, no
// Quit item.
type TrayOptions struct {
	Logger *slog.Logger
	// OpenURL opens a web page in the user's browser: an account's
	// Nextcloud, the setup page. Nil hides Open Nextcloud and Add account….
	OpenURL func(string) error
	// URLUsed is told a URL given to OpenURL once it was used (a setup
	// page link redeemed), so that OpenURL can drop what it kept for it
	// (agent.ForgetURL). Optional.
	URLUsed func(string)
	// Autostart backs the Start at login checkbox; nil hides it.
	Autostart AutostartControl
	// SetupPage returns the setup page's URL with a fresh one-time token,
	// starting the page if needed. Nil: the tray runs its own SetupServer
	// on the Backend.
	SetupPage func(ctx context.Context) (string, error)
	// Quit stops the agent; nil hides the Quit item. It is called on its own
	// goroutine.
	Quit func()
	// Peer names the tray in the agent's logs. Default: this process.
	Peer ipc.Peer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// RefreshEvery is how often texts like "token valid 4 min" are redone
	// when nothing changed. Default 30 s.
	RefreshEvery time.Duration
	// MaxAccounts is how many accounts get their own items; more are
	// summarised in one line. Default 8.
	MaxAccounts int
}

func (o *TrayOptions) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 30 * time.Second
	}
	if o.MaxAccounts <= 0 {
		o.MaxAccounts = 8
	}
	if o.Peer == (ipc.Peer{}) {
		o.Peer = selfPeer()
	}
}

// selfPeer is this process as an ipc.Peer: the tray and the setup page run
// inside the agent.
func selfPeer() ipc.Peer {
	exe, _ := os.Executable()
	return ipc.Peer{UID: os.Getuid(), PID: os.Getpid(), Exe: exe}
}

// setupLauncher runs at most one SetupServer at a time and hands out fresh
// one-time links to it.
type setupLauncher struct {
	b    Backend
	log  *slog.Logger
	used func(string) // TrayOptions.URLUsed

	mu  sync.Mutex // guards cur
	cur *SetupServer
}

// url returns a fresh one-time link to the running setup page, starting a
// new page when none runs. ctx bounds the page's life.
func (l *setupLauncher) url(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		if u, err := l.cur.Link(); err == nil {
			return u, nil
		}
	}
	s := NewSetupServer(l.b, SetupOptions{Logger: l.log, Redeemed: l.used})
	u, err := s.Start(ctx)
	if err != nil {
		return "", err
	}
	l.cur = s
	return u, nil
}

// close stops the running setup page, if any.
func (l *setupLauncher) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil {
		l.cur.Close()
		l.cur = nil
	}
}
