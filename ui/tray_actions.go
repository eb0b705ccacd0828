//go:build linux || windows || (darwin && cgo)

package ui

// The tray's menu actions: each click on an account's item runs one of
// these through goAction, off the menu's goroutine.

import (
	"context"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// onAccount runs f for the account group i currently shows.
func (t *tray) onAccount(i int, f func(a accountView)) {
	t.mu.Lock()
	var a accountView
	ok := i < len(t.bound)
	if ok {
		a = t.bound[i]
	}
	t.mu.Unlock()
	if ok {
		f(a)
	}
}

// setBusy marks a tray action on an account; false when one already runs.
func (t *tray) setBusy(name, what string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy[name] != "" {
		return false
	}
	t.busy[name] = what
	return true
}

func (t *tray) clearBusy(name string) {
	t.mu.Lock()
	delete(t.busy, name)
	t.mu.Unlock()
	t.refreshNow()
}

// signIn starts a sign-in of a; the agent opens the browser.
func (t *tray) signIn(a accountView) {
	if !a.SignIn.Enabled || !t.setBusy(a.Name, busySignIn) {
		return
	}
	t.refreshNow()
	t.goAction("sign in", func(ctx context.Context) {
		defer t.clearBusy(a.Name)
		ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
		defer cancel()
		t.log.Info("tray: sign-in started", "account", a.Name)
		res, err := t.b.Login(ctx, t.opts.Peer, ipc.LoginRequest{Account: a.Name, OpenBrowser: true}, func(ev ipc.LoginEvent) {
			t.log.Debug("tray: sign-in progress", "account", a.Name, "event", ev.Type)
		})
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.log.Warn("tray: sign-in failed", "account", a.Name, "err", err)
			t.sess.notify(ctx, a.Name, "ncagent: sign-in for "+a.Name+" failed",
				errorText(err)+"\nTry again from the ncagent menu, or run: ncagent login "+a.Name)
			return
		}
		t.log.Info("tray: signed in", "account", a.Name, "user", res.User)
	})
}

// revoke revokes a's access and deletes its secret.
func (t *tray) revoke(a accountView) {
	if !a.Confirm.Enabled || !t.setBusy(a.Name, busyRevoke) {
		return
	}
	t.refreshNow()
	t.goAction("revoke", func(ctx context.Context) {
		defer t.clearBusy(a.Name)
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := t.b.Revoke(ctx, t.opts.Peer, ipc.RevokeRequest{Account: a.Name})
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			t.log.Warn("tray: revoke failed", "account", a.Name, "err", err)
			t.sess.notify(ctx, a.Name, "ncagent: revoking "+a.Name+" failed",
				errorText(err)+"\nTry again, or run: ncagent revoke "+a.Name)
			return
		}
		body := "Its secret was deleted from the keychain. Sign in again from the ncagent menu."
		if res.Note != "" {
			body = res.Note + "\n" + body
		}
		t.sess.notify(ctx, a.Name, "ncagent: access for "+a.Name+" revoked", body)
	})
}

// openServer opens the account's Nextcloud in the browser.
func (t *tray) openServer(a accountView) {
	if a.Server == "" || t.opts.OpenURL == nil {
		return
	}
	t.goAction("open nextcloud", func(context.Context) {
		if err := t.opts.OpenURL(a.Server); err != nil {
			t.log.Warn("tray: open nextcloud", "account", a.Name, "err", err)
		}
	})
}

// addAccount opens the setup page.
func (t *tray) addAccount() {
	if t.opts.OpenURL == nil {
		return
	}
	t.goAction("add account", func(ctx context.Context) {
		u, err := t.setupURL(ctx)
		if err != nil {
			t.log.Warn("tray: start the setup page", "err", err)
			t.sess.notify(ctx, "setup", "ncagent: the setup page did not start",
				errorText(err)+"\nAdd the account with: ncagent login NAME --server URL")
			return
		}
		// u carries a one-time token: never log it.
		if err := t.opts.OpenURL(u); err != nil {
			t.log.Warn("tray: open the setup page", "err", err)
		}
	})
}

// toggleAutostart flips Start at login.
func (t *tray) toggleAutostart() {
	t.mu.Lock()
	on := !t.autoOn
	t.mu.Unlock()
	t.goAction("start at login", func(ctx context.Context) {
		if err := t.opts.Autostart.SetEnabled(on); err != nil {
			t.log.Warn("tray: set start at login", "on", on, "err", err)
			t.sess.notify(ctx, "autostart", "ncagent: could not change Start at login", errorText(err))
		}
		t.autoStale.Store(true)
		t.refreshNow()
	})
}
