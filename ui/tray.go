//go:build linux || windows || (darwin && cgo)

package ui

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/systray"

	"github.com/ncagent/ncagent/ipc"
)

// trayStarted makes StartTray once-only: systray is a process-wide
// singleton that cannot be restarted after it quit.
var trayStarted atomic.Bool

// StartTray shows the tray icon and menu for b and keeps them current until
// stop is called or ctx ends. It returns at once, the tray running on a
// goroutine of its own: NewTray, then Run on that goroutine. That suits
// Linux and Windows; on macOS, whose menu bar must run on the process's
// main thread, use NewTray and call Run from main.
//
// StartTray may succeed once per process. stop is safe to call twice; it
// waits for the tray's goroutines and the sign-ins it started.
func StartTray(ctx context.Context, b Backend, opts TrayOptions) (stop func(), err error) {
	tr, err := NewTray(ctx, b, opts)
	if err != nil {
		return nil, err
	}
	started := make(chan struct{})
	go tr.run(func() { close(started) })
	select {
	case <-started:
	case <-tr.t.ran:
	}
	return tr.Stop, nil
}

// Tray is a tray ready to show: NewTray prepared it, Run shows it on the
// calling goroutine. The tray never blocks or crashes the agent: Backend
// calls and menu actions happen on the tray's own goroutines, and panics
// there are recovered and logged.
type Tray struct{ t *tray }

// NewTray prepares the tray icon and menu for b: it checks the graphical
// session and reads the first status, and shows nothing yet (see Run).
//
// Without a graphical session (Linux: no reachable session bus, or neither
// DISPLAY nor WAYLAND_DISPLAY set) it returns an error wrapping ErrNoTray.
// Without a StatusNotifierWatcher on the bus the menu is still served, and
// the icon registers when a watcher appears.
//
// NewTray may succeed once per process: systray is a process-wide
// singleton that cannot be restarted after it quit. The tray stops when
// ctx ends or Stop is called.
func NewTray(ctx context.Context, b Backend, opts TrayOptions) (*Tray, error) {
	opts.defaults()
	sess, err := openSession(opts.Logger)
	if err != nil {
		return nil, err
	}
	if !trayStarted.CompareAndSwap(false, true) {
		sess.close()
		return nil, fmt.Errorf("%w: the tray already ran in this process", ErrNoTray)
	}
	routeLibraryLog(opts.Logger)
	ctx, cancel := context.WithCancel(ctx)
	t := &tray{
		b:      b,
		opts:   opts,
		log:    opts.Logger,
		sess:   sess,
		ctx:    ctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
		ready:  make(chan struct{}),
		quitCh: make(chan struct{}),
		ran:    make(chan struct{}),
		busy:   map[string]string{},
		last:   map[string]string{},
		setup:  &setupLauncher{b: b, log: opts.Logger, used: opts.URLUsed},
	}
	t.autoStale.Store(true)
	if opts.SetupPage != nil {
		t.setupURL = opts.SetupPage
	} else {
		t.setupURL = t.setup.url
	}
	// Read the first status before the menu is built, so that the first
	// menu a host asks for is complete. Bounded: a slow agent only means an
	// emptier first menu.
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	st, serr := b.Status(sctx)
	scancel()
	t.initial = buildView(st, serr, nil, opts.Now(), opts.MaxAccounts)
	t.sub, t.unsubscribe = b.Subscribe()
	tr := &Tray{t: t}
	go func() { // the agent stopping removes the icon too
		<-ctx.Done()
		tr.Stop()
	}()
	return tr, nil
}

// Run shows the tray and runs the platform's tray loop on the calling
// goroutine until the tray stops (Stop, or the end of NewTray's ctx); it
// returns once the icon is gone. On macOS the caller must be the process's
// main thread: ncagent locks its main goroutine to it in an init function
// of package main and calls Run from there, the agent running on other
// goroutines. Run runs once; later calls return at once.
func (tr *Tray) Run() { tr.run(func() {}) }

// run is Run, calling started once the native tray runs.
func (tr *Tray) run(started func()) {
	t := tr.t
	if !t.running.CompareAndSwap(false, true) {
		return
	}
	defer close(t.ran)
	defer t.recoverPanic("run systray")
	runNative(t.onReady, func() {}, func() {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.unsubscribe()
			t.loop(t.sub)
		}()
		started()
	}, t.quitCh)
}

// Stop removes the tray and waits for its goroutines and the sign-ins it
// started, and for Run to return. It is safe to call twice and from any
// goroutine but Run's.
func (tr *Tray) Stop() {
	t := tr.t
	t.stopOnce.Do(func() {
		running := t.running.Load()
		if running {
			select { // onReady adds listeners; let it finish first
			case <-t.ready:
			case <-time.After(5 * time.Second):
			}
		}
		t.mu.Lock()
		t.cancel() // under mu: no goroutine is tracked after this
		t.mu.Unlock()
		t.wg.Wait()
		if !t.running.Swap(true) { // never ran (and never will): no loop to unsubscribe
			t.unsubscribe()
			close(t.ran)
		}
		t.setup.close()
		t.sess.close() // first: it must not register again once systray's connection closes
		close(t.quitCh)
		select {
		case <-t.ran:
		case <-time.After(5 * time.Second):
			t.log.Warn("tray: the tray loop did not end in time")
		}
	})
}

// tray is a running tray. Items are touched by onReady and then only by
// the loop goroutine.
type tray struct {
	b        Backend
	opts     TrayOptions
	log      *slog.Logger
	sess     session
	setup    *setupLauncher
	setupURL func(ctx context.Context) (string, error)
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the loop, click listeners and actions
	kick     chan struct{}  // asks the loop to refresh now (capacity 1)
	ready    chan struct{}  // closed when the menu is built
	quitCh   chan struct{}  // closed by Stop: ends the native tray loop
	ran      chan struct{}  // closed when Run returned (or by Stop when it never ran)
	running  atomic.Bool    // Run was called (or Stop made sure it never will)
	stopOnce sync.Once
	initial  trayView

	sub         <-chan struct{} // the Backend's change notifications
	unsubscribe func()

	mu     sync.Mutex        // guards busy, bound, autoOn; held while cancel is called and wg grows
	busy   map[string]string // tray actions running, by account
	bound  []accountView     // what each account group shows now
	autoOn bool              // the Start at login state last read

	// Only the loop goroutine (and onReady before it) touch these.
	autoStale  atomic.Bool       // Start at login must be read again
	last       map[string]string // last state seen per account, for notifications
	info       *item
	groups     []*itemGroup
	add        *item
	autostart  *item
	quit       *item
	icon       iconState
	tooltip    string
	iconSet    bool
	tooltipSet bool
}

// itemGroup is the menu items of one account. confirm is the only item
// of revoke's submenu.
type itemGroup struct {
	title, signIn, revoke, confirm, open *item
}

// item is a systray item and what it shows, so that only changes reach the
// tray host.
type item struct {
	it      *systray.MenuItem
	view    itemView
	checked bool
}

func newItem(label string, checkbox bool) *item {
	var it *systray.MenuItem
	if checkbox {
		it = systray.AddMenuItemCheckbox(label, "", false)
	} else {
		it = systray.AddMenuItem(label, "")
	}
	return &item{it: it, view: itemView{Label: label, Visible: true, Enabled: true}}
}

// sub adds an item to i's submenu.
func (i *item) sub(label string) *item {
	return &item{it: i.it.AddSubMenuItem(label, ""), view: itemView{Label: label, Visible: true, Enabled: true}}
}

func (i *item) apply(v itemView) {
	if v.Label != i.view.Label {
		i.it.SetTitle(v.Label)
	}
	if v.Enabled != i.view.Enabled {
		if v.Enabled {
			i.it.Enable()
		} else {
			i.it.Disable()
		}
	}
	if v.Visible != i.view.Visible {
		if v.Visible {
			i.it.Show()
		} else {
			i.it.Hide()
		}
	}
	i.view = v
}

func (i *item) setChecked(on bool) {
	if on == i.checked {
		return
	}
	if on {
		i.it.Check()
	} else {
		i.it.Uncheck()
	}
	i.checked = on
}

// onReady builds the menu for the accounts of the first status.
func (t *tray) onReady() {
	defer close(t.ready)
	defer t.recoverPanic("build menu")
	systray.SetTitle("ncagent")
	t.buildMenu(len(t.initial.Accounts))
	t.show(t.initial)
}

// buildMenu builds the whole menu with n account groups, a separator
// between two accounts. show rebuilds it (systray.ResetMenu) when the
// number of accounts changes: a separator cannot be hidden, so a pool of
// hidden groups would leave a stack of them.
func (t *tray) buildMenu(n int) {
	t.info = newItem("", false)
	t.groups = nil
	for i := range n {
		if i > 0 {
			systray.AddSeparator()
		}
		g := &itemGroup{
			title:  newItem("", false),
			signIn: newItem("Sign in…", false),
			revoke: newItem("Revoke access…", false),
			open:   newItem("Open Nextcloud", false),
		}
		// Revoking takes two clicks: "Revoke access…" opens a submenu
		// whose one item says what it does.
		g.confirm = g.revoke.sub("Revoke access now")
		t.groups = append(t.groups, g)
	}
	systray.AddSeparator()
	t.add = newItem("Add account…", false)
	if t.opts.Autostart != nil {
		t.autostart = newItem("Start at login", true)
	}
	systray.AddSeparator()
	t.quit = newItem("Quit", false)
	if t.opts.OpenURL == nil {
		t.add.apply(itemView{Label: "Add account…"})
	}
	if t.opts.Quit == nil {
		t.quit.apply(itemView{Label: "Quit"})
	}

	for i, g := range t.groups {
		t.listen(g.signIn, func() { t.onAccount(i, t.signIn) })
		t.listen(g.confirm, func() { t.onAccount(i, t.revoke) })
		t.listen(g.open, func() { t.onAccount(i, t.openServer) })
	}
	t.listen(t.add, t.addAccount)
	if t.autostart != nil {
		t.listen(t.autostart, t.toggleAutostart)
	}
	t.listen(t.quit, func() {
		if t.opts.Quit != nil {
			t.goAction("quit", func(context.Context) { t.opts.Quit() })
		}
	})
}

// listen runs f for each click on i until the tray stops. f must return
// quickly: long work goes through goAction.
func (t *tray) listen(i *item, f func()) {
	ch := i.it.ClickedCh
	if !t.track() {
		return
	}
	go func() {
		defer t.wg.Done()
		for {
			select {
			case <-t.ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				func() {
					defer t.recoverPanic("menu click")
					f()
				}()
			}
		}
	}()
}

// goAction runs f on its own goroutine, tracked by stop, unless the tray
// is stopping.
func (t *tray) goAction(name string, f func(ctx context.Context)) {
	if !t.track() {
		return
	}
	go func() {
		defer t.wg.Done()
		defer t.recoverPanic(name)
		f(t.ctx)
	}()
}

// track adds a goroutine to wg, unless the tray is stopping.
func (t *tray) track() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tray) recoverPanic(what string) {
	if r := recover(); r != nil {
		t.log.Error("tray: recovered from a panic", "in", what, "panic", fmt.Sprint(r))
	}
}

// refreshNow asks the loop for a refresh without waiting.
func (t *tray) refreshNow() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// loop keeps the menu current: on agent changes (coalesced), on requests
// from actions, when the menu opens and every RefreshEvery.
func (t *tray) loop(sub <-chan struct{}) {
	select {
	case <-t.ready:
	case <-t.ctx.Done():
		return
	}
	t.reapply()
	t.refresh()
	tick := time.NewTicker(t.opts.RefreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-sub:
		case <-t.kick:
		case <-tick.C:
		case <-systray.TrayOpenedCh:
		}
		// Coalesce a burst of changes into one refresh.
		coalesce := time.NewTimer(50 * time.Millisecond)
	drain:
		for {
			select {
			case <-sub:
			case <-t.kick:
			case <-coalesce.C:
				break drain
			case <-t.ctx.Done():
				coalesce.Stop()
				return
			}
		}
		t.refresh()
	}
}

// reapply makes the next show set the title, icon and tooltip again.
// systray runs onReady on a goroutine of its own while it exports the
// item: what onReady sets after the export read the values but before
// systray keeps the exported properties is stored and never sent, so a
// panel could show no icon until the state changed. The loop calls this
// once the menu is built; the export is complete by then (runNative
// starts the loop only after it).
func (t *tray) reapply() {
	systray.SetTitle("ncagent")
	t.iconSet, t.tooltipSet = false, false
}

// refresh reads the status and shows it.
func (t *tray) refresh() {
	defer t.recoverPanic("refresh")
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	st, err := t.b.Status(ctx)
	cancel()
	if t.ctx.Err() != nil {
		return
	}
	if err != nil {
		t.log.Warn("tray: status", "err", err)
	}
	t.mu.Lock()
	busy := make(map[string]string, len(t.busy))
	for k, v := range t.busy {
		busy[k] = v
	}
	t.mu.Unlock()
	v := buildView(st, err, busy, t.opts.Now(), t.opts.MaxAccounts)
	if t.autostart != nil && t.autoStale.Swap(false) {
		// Read at start and after a toggle only: it may run systemctl.
		on, aerr := t.opts.Autostart.Enabled()
		if aerr != nil {
			t.log.Warn("tray: read start at login", "err", aerr)
		}
		t.mu.Lock()
		t.autoOn = on
		t.mu.Unlock()
		t.autostart.setChecked(on)
	}
	t.show(v)
	if err == nil {
		t.notifyTransitions(st)
		if slices.ContainsFunc(st.Accounts, func(a ipc.AccountStatus) bool { return a.Degraded }) {
			// The agent reports an account degraded while a rotated
			// refresh token's keychain write is still running, and
			// retries failed writes on its own; it says nothing when a
			// write succeeds. Look again soon rather than show "keychain
			// write failing" until the next tick.
			time.AfterFunc(degradedRecheck, t.refreshNow)
		}
	}
}

// degradedRecheck is how soon the tray reads the status again while an
// account is degraded.
const degradedRecheck = 2 * time.Second

// show applies a view to the menu, icon and tooltip.
func (t *tray) show(v trayView) {
	if !t.iconSet || v.Icon != t.icon {
		systray.SetIcon(iconBytes(v.Icon))
		t.icon, t.iconSet = v.Icon, true
	}
	if !t.tooltipSet || v.Tooltip != t.tooltip {
		systray.SetTooltip(v.Tooltip)
		t.tooltip, t.tooltipSet = v.Tooltip, true
	}
	if len(v.Accounts) != len(t.groups) {
		// Listeners of the old items stay until the tray stops; their
		// channels are never sent on again.
		systray.ResetMenu()
		t.buildMenu(len(v.Accounts))
		if t.autostart != nil {
			t.mu.Lock()
			on := t.autoOn
			t.mu.Unlock()
			t.autostart.setChecked(on)
		}
	}
	t.info.apply(v.Info)
	for i, g := range t.groups {
		a := v.Accounts[i]
		g.title.apply(a.Title)
		g.signIn.apply(a.SignIn)
		g.revoke.apply(a.Revoke)
		g.confirm.apply(a.Confirm)
		if t.opts.OpenURL == nil {
			a.Open = itemView{Label: a.Open.Label}
		}
		g.open.apply(a.Open)
	}
	t.mu.Lock()
	t.bound = v.Accounts
	t.mu.Unlock()
}

// notifyTransitions sends a desktop notification when an account moves to
// needs-login: once per transition, not for the state found at start.
func (t *tray) notifyTransitions(st ipc.StatusResponse) {
	seen := map[string]bool{}
	for _, a := range st.Accounts {
		seen[a.Name] = true
		prev, known := t.last[a.Name]
		t.last[a.Name] = a.State
		if known && prev != a.State && a.State == stateNeedsLogin && prev != stateSigningIn {
			t.notify(a.Name, "ncagent: "+a.Name+" needs sign-in",
				"Choose Sign in again… in the ncagent menu, or run: ncagent login "+a.Name)
		}
	}
	for name := range t.last {
		if !seen[name] {
			delete(t.last, name)
		}
	}
}

// notify shows a desktop notification without waiting for it.
func (t *tray) notify(key, summary, body string) {
	t.goAction("notify", func(ctx context.Context) {
		t.sess.notify(ctx, key, summary, body)
	})
}
