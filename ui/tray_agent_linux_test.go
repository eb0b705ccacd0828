package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// accountItems returns the visible menu entries of one account's group:
// its title (a disabled "name — …" entry) and the actions up to the next
// title or separator, formatted as shown formats them.
func accountItems(entries []menuEntry, name string) []string {
	var out []string
	in := false
	for _, e := range entries {
		if !e.Visible {
			continue
		}
		title := !e.Enabled && strings.Contains(e.Label, " — ")
		switch {
		case !in && title && strings.HasPrefix(e.Label, name+" — "):
			in = true
		case in && (title || e.Type == "separator"):
			return out
		case !in:
			continue
		}
		out = append(out, shown([]menuEntry{e})...)
	}
	return out
}

// groupIs matches an account's group: its title against a regular
// expression and its actions exactly.
func groupIs(name, titleRE string, actions ...string) func([]menuEntry) bool {
	re := regexp.MustCompile("^" + titleRE + " \\[disabled\\]$")
	return func(l []menuEntry) bool {
		g := accountItems(l, name)
		return len(g) > 0 && re.MatchString(g[0]) && slices.Equal(g[1:], actions)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

// TestTrayWithAgent starts the real agent (real socket, Secret Service,
// in-process authorization servers) and its tray as ncagent run does, and
// drives the tray's menu over D-Bus like a panel: the accounts' states
// change at the IdP and through the menu, and the menu, the agent's
// status and the keychain must agree. No StatusNotifierWatcher is on the
// bus: the menu works without one.
func TestTrayWithAgent(t *testing.T) {
	needBus(t)
	testutil.RequireSecretService(t)
	if inOwnProcess(t) {
		return
	}
	idp := idptest.New(t, idptest.Options{})
	labIdP := idptest.New(t, idptest.Options{})
	f := startAgent(t, testAccount{"work", idp}, testAccount{"home", idp}, testAccount{"lab", labIdP})
	who := func(s *idptest.Server) string {
		u, _ := url.Parse(s.Issuer())
		return regexp.QuoteMeta(idptest.DefaultSubject + "@" + u.Host)
	}
	host, labHost := who(idp), who(labIdP)

	// Every account signed in, with a cached token, before the tray starts;
	// the keychain then holds each chain's current refresh token.
	for _, name := range []string{"work", "home", "lab"} {
		if _, err := f.token(ipc.TokenRequest{Account: name}); err != nil {
			t.Fatalf("token %s: %v", name, err)
		}
		f.waitState(t, name, stateSignedIn)
	}

	client := busConn(t)
	notes := serveNotifications(t)

	opened := &recorder{}
	stop, err := StartTray(context.Background(), f.a, TrayOptions{
		Logger:  f.log,
		OpenURL: func(u string) error { opened.add(u); return nil },
		Quit:    func() {},
	})
	if err != nil {
		t.Fatalf("StartTray: %v", err)
	}
	t.Cleanup(stop)
	menu, item := trayMenu(t, client, os.Getpid())
	if hasOwner(client, watcherName) {
		t.Fatal("a StatusNotifierWatcher is on the test bus; want a private bus without one")
	}

	t.Run("signed in", func(t *testing.T) {
		for _, name := range []string{"work", "home"} {
			waitMenu(t, menu, name+" signed in with a token",
				groupIs(name, name+" — "+host+" — signed in, token valid \\d+ min", "Revoke access…", "Open Nextcloud"))
		}
		waitMenu(t, menu, "lab signed in with a token",
			groupIs("lab", "lab — "+labHost+" — signed in, token valid \\d+ min", "Revoke access…", "Open Nextcloud"))
		waitTooltip(t, item, "ncagent: 3 accounts signed in")
		waitIcon(t, item, iconOK)
	})

	t.Run("needs sign-in", func(t *testing.T) {
		revokeAtIdP(t, idp, f.storedSecret(t, "home"))
		// A client asks for a token that needs a refresh (a scope set not
		// cached; a min_valid beyond the token lifetime is refused without
		// one): the IdP answers invalid_grant.
		_, err := f.token(ipc.TokenRequest{Account: "home", Scopes: ipc.Scopes{"uncached"}})
		var we *ipc.Error
		if !errors.As(err, &we) || we.Code != ipc.CodeNeedsLogin {
			t.Fatalf("token after revocation at the IdP: got %v, want a %s error", err, ipc.CodeNeedsLogin)
		}
		f.waitState(t, "home", stateNeedsLogin)
		waitMenu(t, menu, "home needs sign-in",
			groupIs("home", "home — "+host+" — needs sign-in \\(sign-in expired\\)", "Sign in again…", "Revoke access…", "Open Nextcloud"))
		waitFor(t, "a needs-sign-in notification", func() bool {
			return slices.Contains(notes.summaries(), "ncagent: home needs sign-in")
		})
		waitTooltip(t, item, "ncagent: home needs sign-in")
		waitIcon(t, item, iconAttention)
	})

	t.Run("offline", func(t *testing.T) {
		// Connections to lab's IdP are now refused; a keep-alive connection
		// the agent pooled is cut instead, and a POST that may have reached
		// the IdP is not resent (the chain's rule), so the cause is EOF.
		labIdP.Close()
		f.token(ipc.TokenRequest{Account: "lab", Scopes: ipc.Scopes{"uncached"}})
		f.waitState(t, "lab", stateOffline)
		waitMenu(t, menu, "lab offline",
			groupIs("lab", "lab — "+labHost+" — offline \\((connection refused|EOF)\\)", "Revoke access…", "Open Nextcloud"))
		// home's state did not change since: still one notification.
		f.token(ipc.TokenRequest{Account: "home"})
		if got := count(notes.summaries(), "ncagent: home needs sign-in"); got != 1 {
			t.Errorf("home needs-sign-in notifications: got %d, want 1", got)
		}
		for _, s := range notes.summaries() {
			if strings.Contains(s, "lab") {
				t.Errorf("notification for an offline account: got %q, want none", s)
			}
		}
	})

	t.Run("revoke", func(t *testing.T) {
		stored := f.storedSecret(t, "work")
		revocations := idp.Revocations()
		confirm := submenu(t, getLayout(t, menu), "work —", "Revoke access…")
		if len(confirm) != 1 || confirm[0].Label != "Revoke work's access now" {
			t.Fatalf("revoke submenu: got %+v", confirm)
		}
		click(t, menu, confirm[0].ID)
		f.waitState(t, "work", stateSignedOut)
		waitMenu(t, menu, "work signed out",
			groupIs("work", "work — "+host+" — signed out", "Sign in…", "Open Nextcloud"))
		if _, err := f.kc.Get("work"); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("keychain after revoke: got %v, want ErrNotFound", err)
		}
		if idp.Revocations() <= revocations || idp.RefreshTokenActive(stored) {
			t.Errorf("revoke did not reach the IdP: revocations %d → %d, refresh token still active: %v",
				revocations, idp.Revocations(), idp.RefreshTokenActive(stored))
		}
		waitFor(t, "a revoked notification", func() bool {
			return slices.Contains(notes.summaries(), "ncagent: access for work revoked")
		})
		_, err := f.token(ipc.TokenRequest{Account: "work"})
		var we *ipc.Error
		if !errors.As(err, &we) || we.Code != ipc.CodeNeedsLogin {
			t.Errorf("token after revoke: got %v, want a %s error", err, ipc.CodeNeedsLogin)
		}
	})

	// signInFromMenu clicks an account's sign-in item, plays the browser
	// for the sign-in the agent opens, and checks the account is back.
	signInFromMenu := func(t *testing.T, name, label string) {
		t.Helper()
		click(t, menu, find(t, getLayout(t, menu), name+" —", label))
		authURL := f.nextOpened(t)
		if !strings.HasPrefix(authURL, idp.Issuer()+"/authorize?") {
			t.Fatalf("opened: got %q, want the IdP's authorization endpoint", authURL)
		}
		waitMenu(t, menu, name+" signing in", groupIs(name, name+" — "+host+" — signing in…", "Signing in… [disabled]", "Open Nextcloud"))
		status, last, body := browse(t, authURL)
		if status != http.StatusOK || last.Path != "/callback" || !strings.Contains(body, "Signed in") {
			t.Fatalf("browser: got status %d at %q, want 200 on the agent's callback page saying Signed in", status, last.Path)
		}
		f.waitState(t, name, stateSignedIn)
		waitMenu(t, menu, name+" signed in again",
			groupIs(name, name+" — "+host+" — signed in(, token valid \\d+ min)?", "Revoke access…", "Open Nextcloud"))
		if !idp.RefreshTokenActive(f.storedSecret(t, name)) {
			t.Errorf("the keychain does not hold %s's new live refresh token", name)
		}
		tok, err := f.token(ipc.TokenRequest{Account: name})
		if err != nil {
			t.Fatalf("token after sign-in: %v", err)
		}
		if active, _, _ := idp.Introspect(tok.AccessToken); !active {
			t.Errorf("the IdP says %s's new access token is not active", name)
		}
	}
	t.Run("sign in again", func(t *testing.T) { signInFromMenu(t, "home", "Sign in again…") })
	t.Run("sign in", func(t *testing.T) { signInFromMenu(t, "work", "Sign in…") })

	t.Run("needs sign-in notifies once per transition", func(t *testing.T) {
		revokeAtIdP(t, idp, f.storedSecret(t, "home"))
		f.token(ipc.TokenRequest{Account: "home", Scopes: ipc.Scopes{"uncached"}})
		f.waitState(t, "home", stateNeedsLogin)
		waitFor(t, "a second needs-sign-in notification", func() bool {
			return count(notes.summaries(), "ncagent: home needs sign-in") == 2
		})
	})

	t.Run("open nextcloud and add account", func(t *testing.T) {
		l := getLayout(t, menu)
		click(t, menu, find(t, l, "work —", "Open Nextcloud"))
		click(t, menu, find(t, l, "", "Add account…"))
		waitFor(t, "two URLs opened", func() bool { return len(opened.list()) == 2 })
		var setup string
		for _, u := range opened.list() {
			if u != idp.Issuer() {
				setup = u
			}
		}
		if !slices.Contains(opened.list(), idp.Issuer()) {
			t.Errorf("opened: none of the URLs is work's server %q", idp.Issuer()) // the other carries a one-time token
		}
		// The setup page runs on the agent: its one-time link lets a
		// browser in once.
		u, err := url.Parse(setup)
		if err != nil {
			t.Fatalf("setup link: %v", err)
		}
		if u.Hostname() != "127.0.0.1" || len(u.Query().Get("token")) < 40 {
			t.Fatalf("setup link: got host %q and a %d-character token, want 127.0.0.1 and a token", u.Hostname(), len(u.Query().Get("token")))
		}
		f.secret(u.Query().Get("token"))
		noFollow := &http.Client{Timeout: waitTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i, want := range []int{http.StatusSeeOther, http.StatusForbidden} {
			resp, err := noFollow.Get(setup)
			if err != nil {
				t.Fatalf("setup page: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("setup link, use %d: got status %d, want %d", i+1, resp.StatusCode, want)
			}
		}
	})

	t.Run("stop", func(t *testing.T) {
		stop()
		waitFor(t, "the item leaves the bus", func() bool { return !hasOwner(client, trayItemName(os.Getpid())) })
		// The agent goes on without its tray.
		if _, err := f.token(ipc.TokenRequest{Account: "work"}); err != nil {
			t.Errorf("token after the tray stopped: %v", err)
		}
		if s := f.logs.String(); strings.Contains(s, "panic") {
			t.Errorf("the logs show a panic:\n%s", s)
		}
	})
}

// trayItemName is the bus name systray gives the item of process pid.
func trayItemName(pid int) string {
	return fmt.Sprintf("org.kde.StatusNotifierItem-%d-1", pid)
}

func hasOwner(c *dbus.Conn, name string) bool {
	var ok bool
	c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&ok)
	return ok
}

// trayMenu waits for the tray item of process pid on the bus and returns
// its menu and the item, as a panel finds them.
func trayMenu(t *testing.T, c *dbus.Conn, pid int) (menu, item dbus.BusObject) {
	t.Helper()
	name := trayItemName(pid)
	waitFor(t, "the tray owns "+name, func() bool { return hasOwner(c, name) })
	item = c.Object(name, itemPath)
	mv, err := item.GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		t.Fatalf("get Menu property: %v", err)
	}
	menu = c.Object(name, mv.Value().(dbus.ObjectPath))
	if pid == os.Getpid() {
		syncFirstLayout(t, menu)
	}
	return menu, item
}
