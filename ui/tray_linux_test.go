package ui

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/systray"
	"github.com/godbus/dbus/v5"

	"github.com/ncagent/ncagent/ipc"
)

// needBus skips without a session bus and gives the tray a display value
// (the tray checks one is set; these tests draw nothing).
func needBus(t *testing.T) {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no session bus: run under dbus-run-session -- go test ./ui/ (scripts/test does)")
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		t.Setenv("DISPLAY", ":99")
	}
}

func busConn(t *testing.T) *dbus.Conn {
	t.Helper()
	c, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatalf("connect to the session bus: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTrayNoSession(t *testing.T) {
	tests := []struct {
		name, display, bus, want string
	}{
		{"no display", "", "unix:path=/nonexistent/bus", "no display"},
		{"no bus address", ":99", "", "no session bus"},
		{"bus not reachable", ":99", "unix:path=" + t.TempDir() + "/no-bus", "session bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DISPLAY", tt.display)
			t.Setenv("WAYLAND_DISPLAY", "")
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tt.bus)
			start := time.Now()
			stop, err := StartTray(context.Background(), newFakeBackend(), TrayOptions{})
			if err == nil {
				stop()
				t.Fatal("StartTray: got no error, want one")
			}
			if !errors.Is(err, ErrNoTray) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("StartTray: got %q, want ErrNoTray saying %q", err, tt.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("StartTray took %v to fail; want it fast", d)
			}
		})
	}
}

// menuEntry is one com.canonical.dbusmenu item as a host sees it.
type menuEntry struct {
	ID      int32
	Label   string
	Type    string
	Enabled bool
	Visible bool
	Toggle  int32
	// Children is the item's submenu.
	Children []menuEntry
}

// getLayout calls GetLayout(0, -1, []) and flattens the root's children.
func getLayout(t *testing.T, menu dbus.BusObject) []menuEntry {
	t.Helper()
	var rev uint32
	var root []any
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := menu.CallWithContext(ctx, "com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &root); err != nil {
		t.Fatalf("GetLayout: %v", err)
	}
	return layoutEntries(root[2].([]dbus.Variant))
}

// layoutEntries converts GetLayout children, with their submenus.
func layoutEntries(children []dbus.Variant) []menuEntry {
	var out []menuEntry
	for _, c := range children {
		node := c.Value().([]any)
		props := node[1].(map[string]dbus.Variant)
		e := menuEntry{ID: node[0].(int32), Enabled: true, Visible: true}
		if v, ok := props["label"]; ok {
			e.Label = v.Value().(string)
		}
		if v, ok := props["type"]; ok {
			e.Type = v.Value().(string)
		}
		if v, ok := props["enabled"]; ok {
			e.Enabled = v.Value().(bool)
		}
		if v, ok := props["visible"]; ok {
			e.Visible = v.Value().(bool)
		}
		if v, ok := props["toggle-state"]; ok {
			e.Toggle = v.Value().(int32)
		}
		if kids, ok := node[2].([]dbus.Variant); ok {
			e.Children = layoutEntries(kids)
		}
		out = append(out, e)
	}
	return out
}

// submenu returns the submenu of the visible entry labelled label after
// the entry whose label starts with after.
func submenu(t *testing.T, entries []menuEntry, after, label string) []menuEntry {
	t.Helper()
	id := find(t, entries, after, label)
	for _, e := range entries {
		if e.ID == id {
			return e.Children
		}
	}
	return nil
}

// shown is the visible entries as "label" or "label [disabled]", with
// separators as "---".
func shown(entries []menuEntry) []string {
	var out []string
	for _, e := range entries {
		switch {
		case !e.Visible:
		case e.Type == "separator":
			out = append(out, "---")
		case !e.Enabled:
			out = append(out, e.Label+" [disabled]")
		default:
			out = append(out, e.Label)
		}
	}
	return out
}

// find returns the id of the n-th visible entry labelled label after the
// entry whose label starts with after.
func find(t *testing.T, entries []menuEntry, after, label string) int32 {
	t.Helper()
	seen := after == ""
	for _, e := range entries {
		if !e.Visible {
			continue
		}
		if !seen && strings.HasPrefix(e.Label, after) {
			seen = true
			continue
		}
		if seen && e.Label == label {
			return e.ID
		}
	}
	t.Fatalf("no visible %q after %q in menu %q", label, after, shown(entries))
	return 0
}

func click(t *testing.T, menu dbus.BusObject, id int32) {
	t.Helper()
	if err := menu.Call("com.canonical.dbusmenu.Event", 0, id, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err; err != nil {
		t.Fatalf("Event clicked %d: %v", id, err)
	}
}

// waitMenu polls GetLayout until cond holds.
func waitMenu(t *testing.T, menu dbus.BusObject, what string, cond func([]menuEntry) bool) []menuEntry {
	t.Helper()
	return pollMenu(t, menu, what, false, cond)
}

// waitMenuOpening is waitMenu for a panel that opens the menu before each
// look (Event(0, "opened")): the tray redoes what changes without a state
// change, like how long a token stays valid, when its menu opens.
func waitMenuOpening(t *testing.T, menu dbus.BusObject, what string, cond func([]menuEntry) bool) []menuEntry {
	t.Helper()
	return pollMenu(t, menu, what, true, cond)
}

func pollMenu(t *testing.T, menu dbus.BusObject, what string, open bool, cond func([]menuEntry) bool) []menuEntry {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if open {
			if err := menu.Call("com.canonical.dbusmenu.Event", 0, int32(0), "opened", dbus.MakeVariant(""), uint32(time.Now().Unix())).Err; err != nil {
				t.Fatalf("Event opened: %v", err)
			}
		}
		l := getLayout(t, menu)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the menu: %s; menu is %q", what, shown(l))
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func has(want string) func([]menuEntry) bool {
	return func(l []menuEntry) bool { return slices.Contains(shown(l), want) }
}

// fakeNotifications owns org.freedesktop.Notifications on the test bus.
type fakeNotifications struct {
	mu    sync.Mutex // guards calls
	calls []string   // summaries
}

func (n *fakeNotifications) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, summary)
	return uint32(len(n.calls)), nil
}

// serveNotifications owns org.freedesktop.Notifications on the test bus
// until the test ends.
func serveNotifications(t *testing.T) *fakeNotifications {
	t.Helper()
	n := &fakeNotifications{}
	c := busConn(t)
	if err := c.Export(n, notifierPath, notifierName); err != nil {
		t.Fatal(err)
	}
	own(t, c, notifierName)
	return n
}

func (n *fakeNotifications) summaries() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.calls)
}

// fakeWatcher owns org.kde.StatusNotifierWatcher on the test bus.
type fakeWatcher struct {
	mu    sync.Mutex // guards items
	items []string   // "sender service"
}

func (w *fakeWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, string(sender)+" "+service)
	return nil
}

func (w *fakeWatcher) registered() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.items)
}

type fakeAutostart struct {
	mu   sync.Mutex // guards on, sets
	on   bool
	sets []bool
}

func (a *fakeAutostart) Enabled() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.on, nil
}

func (a *fakeAutostart) SetEnabled(on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.on = on
	a.sets = append(a.sets, on)
	return nil
}

var _ AutostartControl = (*fakeAutostart)(nil)

// recorder collects strings from callbacks.
type recorder struct {
	mu  sync.Mutex // guards got
	got []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func own(t *testing.T, c *dbus.Conn, name string) {
	t.Helper()
	reply, err := c.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: reply %v, err %v", name, reply, err)
	}
}

// pixmap converts an embedded icon the way a tray host receives it (ARGB32,
// network byte order) so the test can tell which icon is shown.
func pixmap(t *testing.T, s iconState) []byte {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(iconBytes(s)))
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*4)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			out = append(out, byte(a), byte(r), byte(g), byte(bl))
		}
	}
	_ = image.Point{}
	return out
}

func iconShown(t *testing.T, item dbus.BusObject) []byte {
	t.Helper()
	v, err := item.GetProperty("org.kde.StatusNotifierItem.IconPixmap")
	if err != nil {
		t.Fatalf("get IconPixmap: %v", err)
	}
	px := v.Value().([][]any)
	if len(px) != 1 {
		t.Fatalf("IconPixmap: got %d images, want 1", len(px))
	}
	return px[0][2].([]byte)
}

// waitTooltip waits for the item's tooltip to read want.
func waitTooltip(t *testing.T, item dbus.BusObject, want string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(waitTimeout)
	for got = tooltipShown(t, item); got != want; got = tooltipShown(t, item) {
		if time.Now().After(deadline) {
			t.Fatalf("tooltip: got %q, want %q", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// waitIcon waits for the item to show the icon of state s.
func waitIcon(t *testing.T, item dbus.BusObject, s iconState) {
	t.Helper()
	want := pixmap(t, s)
	waitFor(t, "the "+s.String()+" icon", func() bool { return bytes.Equal(iconShown(t, item), want) })
}

func tooltipShown(t *testing.T, item dbus.BusObject) string {
	t.Helper()
	v, err := item.GetProperty("org.kde.StatusNotifierItem.ToolTip")
	if err != nil {
		t.Fatalf("get ToolTip: %v", err)
	}
	return v.Value().([]any)[2].(string)
}

// TestTrayOverDBus starts the real tray against a fake Backend and drives
// its menu over D-Bus the way a panel does. systray is one per process, so
// this is one test with steps.
func TestTrayOverDBus(t *testing.T) {
	needBus(t)
	if inOwnProcess(t) {
		return
	}
	client := busConn(t)

	notes := serveNotifications(t)

	tok := func(a *ipc.AccountStatus) {
		a.Tokens = []ipc.CachedToken{{Audience: "nextcloud", ExpiresAt: testNow.Add(4*time.Minute + 10*time.Second)}}
	}
	work := acct("work", stateSignedIn, tok)
	home := acct("home", stateNeedsLogin, func(a *ipc.AccountStatus) { a.User = "bob"; a.LastError = "idp_error: invalid_grant" })
	lab := acct("lab", stateOffline, func(a *ipc.AccountStatus) {
		a.Server = "https://lab.example.org"
		a.LastError = "dial tcp: lookup lab.example.org: no such host"
	})
	b := newFakeBackend(work, home, lab)

	opened, quits := &recorder{}, &recorder{}
	auto := &fakeAutostart{}
	logs := &syncBuffer{}
	stop, err := StartTray(context.Background(), b, TrayOptions{
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OpenURL:     func(u string) error { opened.add(u); return nil },
		Autostart:   auto,
		SetupPage:   func(context.Context) (string, error) { return "http://127.0.0.1:1/?token=one-time", nil },
		Quit:        func() { quits.add("quit") },
		Now:         func() time.Time { return testNow },
		MaxAccounts: 4,
	})
	if err != nil {
		t.Fatalf("StartTray: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	// A panel finds the item by its bus name; no watcher is on this bus.
	itemName := trayItemName(os.Getpid())
	menu, item := trayMenu(t, client, os.Getpid())
	if hasOwner(client, watcherName) {
		t.Fatal("a StatusNotifierWatcher is already on the test bus; want a private bus without one")
	}

	t.Run("menu without a watcher", func(t *testing.T) {
		l := waitMenu(t, menu, "work's token text", has("work — alice@cloud.example.com — signed in, token valid 4 min [disabled]"))
		want := []string{
			"work — alice@cloud.example.com — signed in, token valid 4 min [disabled]",
			"Revoke access…",
			"Open Nextcloud",
			"---",
			"home — bob@cloud.example.com — needs sign-in (sign-in expired) [disabled]",
			"Sign in again…",
			"Revoke access…",
			"Open Nextcloud",
			"---",
			"lab — alice@lab.example.org — offline (server not found) [disabled]",
			"Revoke access…",
			"Open Nextcloud",
			"---",
			"Add account…",
			"Start at login",
			"---",
			"Quit",
		}
		if got := shown(l); !slices.Equal(got, want) {
			t.Errorf("menu:\n got %q\nwant %q", got, want)
		}
		waitTooltip(t, item, "ncagent: home needs sign-in")
		waitIcon(t, item, iconAttention)
	})

	t.Run("revoke", func(t *testing.T) {
		// The first click only opens the confirming submenu.
		l := getLayout(t, menu)
		click(t, menu, find(t, l, "work —", "Revoke access…"))
		confirm := submenu(t, l, "work —", "Revoke access…")
		if got := shown(confirm); !slices.Equal(got, []string{"Revoke work's access now"}) {
			t.Fatalf("revoke submenu: got %q, want the one confirming item", got)
		}
		time.Sleep(300 * time.Millisecond) // time for a wrong revoke to arrive
		if _, r := b.calls(); len(r) != 0 {
			t.Fatalf("Revoke called on the first click: %+v", r)
		}
		click(t, menu, confirm[0].ID)
		waitFor(t, "Revoke called", func() bool { _, r := b.calls(); return len(r) == 1 })
		if _, r := b.calls(); r[0].Account != "work" {
			t.Errorf("Revoke account: got %q, want %q", r[0].Account, "work")
		}
		b.setAccount(acct("work", stateSignedOut))
		l = waitMenu(t, menu, "work signed out", has("work — alice@cloud.example.com — signed out [disabled]"))
		find(t, l, "work —", "Sign in…")
		waitFor(t, "revoke notification", func() bool { return slices.Contains(notes.summaries(), "ncagent: access for work revoked") })
	})

	t.Run("sign in again", func(t *testing.T) {
		release := make(chan struct{})
		b.mu.Lock()
		b.loginFn = func(ctx context.Context, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
			progress(ipc.LoginEvent{Type: "open_url", URL: "https://cloud.example.com/login"})
			select {
			case <-release:
			case <-ctx.Done():
				return ipc.LoginEvent{}, ctx.Err()
			}
			b.setAccount(acct("home", stateSignedIn, func(a *ipc.AccountStatus) { a.User = "bob" }))
			return ipc.LoginEvent{Type: "done", Account: req.Account, User: "bob"}, nil
		}
		b.mu.Unlock()
		click(t, menu, find(t, getLayout(t, menu), "home —", "Sign in again…"))
		waitMenu(t, menu, "home signing in", has("home — bob@cloud.example.com — signing in… [disabled]"))
		logins, _ := b.calls()
		if len(logins) != 1 || logins[0].Account != "home" || !logins[0].OpenBrowser {
			t.Fatalf("Login calls: got %+v, want one for home with OpenBrowser", logins)
		}
		close(release)
		waitMenu(t, menu, "home signed in", has("home — bob@cloud.example.com — signed in [disabled]"))
	})

	t.Run("needs-login notifies once", func(t *testing.T) {
		b.setAccount(acct("lab", stateNeedsLogin, func(a *ipc.AccountStatus) { a.Server = "https://lab.example.org" }))
		waitFor(t, "lab notification", func() bool { return slices.Contains(notes.summaries(), "ncagent: lab needs sign-in") })
		b.setAccount(acct("lab", stateNeedsLogin, func(a *ipc.AccountStatus) { a.Server = "https://lab.example.org"; a.LastError = "again" }))
		waitMenu(t, menu, "lab's new error", has("lab — alice@lab.example.org — needs sign-in (again) [disabled]"))
		n := 0
		for _, s := range notes.summaries() {
			if s == "ncagent: lab needs sign-in" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("lab needs-login notifications: got %d, want 1", n)
		}
		if got := tooltipShown(t, item); !strings.Contains(got, "need sign-in") {
			t.Errorf("tooltip: got %q, want it to say who needs sign-in", got)
		}
	})

	t.Run("degraded clears without an event", func(t *testing.T) {
		b.setAccount(acct("work", stateSignedIn, func(a *ipc.AccountStatus) { a.Degraded = true }))
		waitMenu(t, menu, "work degraded", has("work — alice@cloud.example.com — signed in, keychain write failing [disabled]"))
		b.setAccountQuietly(acct("work", stateSignedIn))
		waitMenu(t, menu, "work no longer degraded", has("work — alice@cloud.example.com — signed in [disabled]"))
	})

	t.Run("a new account, the default, separators", func(t *testing.T) {
		b.setStatus(func(st *ipc.StatusResponse) {
			st.DefaultAccount = "home"
			st.Accounts = append(st.Accounts, acct("dev", stateSignedIn, func(a *ipc.AccountStatus) { a.Server = "https://dev.example" }))
		})
		waitMenu(t, menu, "dev added", has("dev — alice@dev.example — signed in [disabled]"))
		syncLayoutRefresh() // the menu was rebuilt for a fourth account
		// The first GetLayout after a rebuild is one level deep (fyne.io/systray
		// works around libdbusmenu-gtk3 so): ask again for the submenus.
		l := getLayout(t, menu)
		var titles []string
		got := shown(l)
		for i, s := range got {
			if strings.HasSuffix(s, "[disabled]") && strings.Contains(s, " — ") {
				titles = append(titles, s)
				if i > 0 && got[i-1] != "---" {
					t.Errorf("no separator before %q in %q", s, got)
				}
			}
		}
		if len(titles) != 4 || !strings.HasPrefix(titles[1], "home (default) — ") {
			t.Errorf("titles: got %q, want 4 accounts with home marked default", titles)
		}
		if n := count(got, "---"); n != 3+2 {
			t.Errorf("separators: got %d in %q, want one between each two of 4 accounts and 2 around Add account…", n, got)
		}
		// The rebuilt menu still acts: the confirming item of dev revokes dev.
		_, revokes := b.calls()
		confirm := submenu(t, l, "dev —", "Revoke access…")
		if len(confirm) != 1 || confirm[0].Label != "Revoke dev's access now" {
			t.Fatalf("dev's revoke submenu: got %+v", confirm)
		}
		click(t, menu, confirm[0].ID)
		waitFor(t, "Revoke dev", func() bool { _, r := b.calls(); return len(r) == len(revokes)+1 && r[len(r)-1].Account == "dev" })
		b.setStatus(func(st *ipc.StatusResponse) {
			st.DefaultAccount = ""
			st.Accounts = st.Accounts[:3]
		})
		l = waitMenu(t, menu, "dev gone", func(l []menuEntry) bool { return count(shown(l), "---") == 2+2 })
		syncLayoutRefresh() // rebuilt again, for three
		if slices.ContainsFunc(shown(l), func(s string) bool { return strings.Contains(s, "(default)") }) {
			t.Errorf("default marker left: %q", shown(l))
		}
	})

	t.Run("open, add, autostart, quit", func(t *testing.T) {
		l := getLayout(t, menu)
		click(t, menu, find(t, l, "lab —", "Open Nextcloud"))
		click(t, menu, find(t, l, "", "Add account…"))
		waitFor(t, "two URLs opened", func() bool { return len(opened.list()) == 2 })
		got := opened.list()
		slices.Sort(got)
		want := []string{"http://127.0.0.1:1/?token=one-time", "https://lab.example.org"}
		if !slices.Equal(got, want) {
			t.Errorf("opened: got %q, want %q", got, want)
		}
		click(t, menu, find(t, l, "", "Start at login"))
		waitMenu(t, menu, "Start at login checked", func(l []menuEntry) bool {
			for _, e := range l {
				if e.Label == "Start at login" {
					return e.Toggle == 1
				}
			}
			return false
		})
		click(t, menu, find(t, l, "", "Quit"))
		waitFor(t, "Quit called", func() bool { return len(quits.list()) == 1 })
	})

	t.Run("registers when a watcher appears", func(t *testing.T) {
		w := &fakeWatcher{}
		wconn := busConn(t)
		if err := wconn.Export(w, watcherPath, watcherName); err != nil {
			t.Fatal(err)
		}
		var owner string
		if err := client.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, itemName).Store(&owner); err != nil {
			t.Fatal(err)
		}
		// The test bus is the session bus of the whole test run: a tray of
		// another package's tests may register with this watcher too. Only
		// this tray's registrations (sent from its item's connection) count.
		ours := func() []string {
			var rs []string
			for _, r := range w.registered() {
				if sender, _, _ := strings.Cut(r, " "); sender == owner {
					rs = append(rs, r)
				}
			}
			return rs
		}
		own(t, wconn, watcherName)
		waitFor(t, "RegisterStatusNotifierItem from the tray", func() bool { return len(ours()) > 0 })
		t.Logf("registered: %q (the tray's item is %s)", w.registered(), owner)
		// Every registration names the same item the same way, so that a
		// watcher shows one icon, not one per form.
		for _, r := range ours() {
			if want := owner + " /StatusNotifierItem"; r != want {
				t.Errorf("registered %q; want %q", r, want)
			}
		}
	})

	t.Run("stop", func(t *testing.T) {
		done := make(chan struct{})
		go func() { stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatal("stop did not return")
		}
		stopped = true
		stop() // twice is fine
		waitFor(t, "the item leaves the bus", func() bool { return !hasOwner(client, itemName) })
		if s := logs.String(); strings.Contains(s, "one-time") || strings.Contains(s, "panic") {
			t.Errorf("tray logs show a token or a panic:\n%s", s)
		}
	})
}

// syncFirstLayout works around a data race in fyne.io/systray v1.12.2: the
// first GetLayout reads the menu revision holding only the menu lock, and
// starts a goroutine that bumps the revision 150 ms later holding only the
// tray lock. An item update takes the menu lock, then the tray lock: one
// right after the first GetLayout orders its read before the goroutine's
// write, and one after the goroutine ran orders that write before every
// later GetLayout, so the race detector has nothing to report.
func syncFirstLayout(t *testing.T, menu dbus.BusObject) {
	t.Helper()
	getLayout(t, menu)
	syncLayoutRefresh()
}

// syncLayoutRefresh is the second half of syncFirstLayout, for right after
// the GetLayout that first saw a rebuilt menu: systray.ResetMenu makes the
// next GetLayout a first one again, with its own delayed bump.
func syncLayoutRefresh() {
	poke := systray.AddMenuItem("", "") // hidden: panels never show it
	poke.Hide()
	time.Sleep(300 * time.Millisecond)
	poke.Hide()
}
