package ui

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ncagent/ncagent/ipc"
)

// iconState is the tray icon shown, from the most urgent state of any
// account.
type iconState int

const (
	iconNone      iconState = iota // no account configured
	iconOK                         // every account signed in
	iconAttention                  // some account needs sign-in
	iconOffline                    // some identity provider unreachable
)

// String names the icon file under icons/.
func (s iconState) String() string {
	switch s {
	case iconOK:
		return "ok"
	case iconAttention:
		return "attention"
	case iconOffline:
		return "offline"
	}
	return "none"
}

// itemView is what one menu item shows.
type itemView struct {
	Label   string
	Visible bool
	Enabled bool
}

// accountView is what one account's group of menu items shows.
type accountView struct {
	Name   string
	State  string // the agent's state, for notifications
	Server string // URL Open Nextcloud opens; empty when it cannot
	Title  itemView
	SignIn itemView
	Revoke itemView // opens a submenu holding Confirm
	// Confirm is the item in the Revoke submenu that revokes: one click on
	// "Revoke access…" only opens it.
	Confirm itemView
	Open    itemView
}

// trayView is everything the tray shows, computed from a status snapshot.
type trayView struct {
	Icon     iconState
	Tooltip  string
	Info     itemView // "no accounts yet", status errors, overflow
	Accounts []accountView
}

// Tray-local actions in progress, by account.
const (
	busySignIn = "signing-in"
	busyRevoke = "revoking"
)

// buildView computes the tray from a status snapshot (or the error getting
// it), the actions the tray itself runs, and the time. maxGroups is how
// many account groups the menu has; more accounts are summarised in Info.
func buildView(st ipc.StatusResponse, statusErr error, busy map[string]string, now time.Time, maxGroups int) trayView {
	var v trayView
	if statusErr != nil {
		v.Icon = iconAttention
		v.Tooltip = "ncagent: status unavailable"
		v.Info = itemView{Label: "Status unavailable: " + shortError(statusErr.Error()), Visible: true}
		return v
	}
	var needs, offline, signedIn, locked []string
	var storeCause string // why the secret store cannot be used, as the agent says
	for _, a := range st.Accounts {
		av := accountViewOf(a, busy[a.Name], now)
		if a.Name == st.DefaultAccount && len(st.Accounts) > 1 {
			// Mark the account that answers requests naming none.
			av.Title.Label = strings.Replace(av.Title.Label, a.Name, a.Name+" (default)", 1)
		}
		switch {
		case a.State == stateSignedIn || busy[a.Name] == busyRevoke:
			signedIn = append(signedIn, a.Name)
		case a.State == stateOffline:
			offline = append(offline, a.Name)
		case a.Store != "":
			locked = append(locked, a.Name) // its secret cannot be read now
			storeCause = a.Store
		default:
			needs = append(needs, a.Name)
		}
		if len(v.Accounts) < maxGroups {
			v.Accounts = append(v.Accounts, av)
		}
	}
	switch {
	case len(st.Accounts) == 0:
		v.Icon = iconNone
		v.Tooltip = "ncagent: no accounts yet: choose Add account…"
		v.Info = itemView{Label: "No accounts yet", Visible: true}
	case len(needs) > 0:
		v.Icon = iconAttention
		v.Tooltip = "ncagent: " + names(needs, "needs sign-in", "need sign-in")
	case len(locked) > 0:
		v.Icon = iconAttention
		v.Tooltip = "ncagent: " + storeCause
	case len(offline) > 0:
		v.Icon = iconOffline
		v.Tooltip = "ncagent: " + names(offline, "offline", "offline")
	default:
		v.Icon = iconOK
		if len(signedIn) == 1 {
			v.Tooltip = "ncagent: " + signedIn[0] + " signed in"
		} else {
			v.Tooltip = fmt.Sprintf("ncagent: %d accounts signed in", len(signedIn))
		}
	}
	if extra := len(st.Accounts) - len(v.Accounts); extra > 0 {
		v.Info = itemView{Label: fmt.Sprintf("%d more accounts: run ncagent status", extra), Visible: true}
	}
	return v
}

// names phrases a list of account names with a verb: "work needs sign-in",
// "work and home need sign-in", "3 accounts need sign-in".
func names(list []string, one, many string) string {
	switch len(list) {
	case 1:
		return list[0] + " " + one
	case 2:
		return list[0] + " and " + list[1] + " " + many
	}
	return fmt.Sprintf("%d accounts %s", len(list), many)
}

// accountViewOf computes one account's menu group.
func accountViewOf(a ipc.AccountStatus, busy string, now time.Time) accountView {
	av := accountView{Name: a.Name, State: a.State}
	if u, err := url.Parse(a.Server); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		av.Server = a.Server
	}
	who := a.Name
	if id := identity(a); id != "" {
		who += " — " + id
	}
	av.Title = itemView{Label: who + " — " + stateText(a, busy, now), Visible: true}

	switch {
	case busy == busySignIn || a.State == stateSigningIn:
		av.SignIn = itemView{Label: "Signing in…", Visible: true}
	case a.State == stateNeedsLogin:
		av.SignIn = itemView{Label: "Sign in again…", Visible: true, Enabled: true}
	case a.State == stateSignedOut:
		av.SignIn = itemView{Label: "Sign in…", Visible: true, Enabled: true}
	default:
		av.SignIn = itemView{Label: "Sign in…"}
	}
	// Revoking makes sense while a secret is kept: not when signed out.
	revocable := a.State != stateSignedOut && a.State != stateSigningIn
	av.Revoke = itemView{Label: "Revoke access…", Visible: revocable || busy == busyRevoke, Enabled: revocable && busy == ""}
	if busy == busyRevoke {
		av.Revoke.Label = "Revoking…"
	}
	av.Confirm = itemView{Label: "Revoke " + a.Name + "'s access now", Visible: av.Revoke.Visible, Enabled: av.Revoke.Enabled}
	av.Open = itemView{Label: "Open Nextcloud", Visible: av.Server != "", Enabled: av.Server != ""}
	return av
}

// identity is "alice@cloud.example.com": the user at the server's host.
func identity(a ipc.AccountStatus) string {
	host := a.Server
	if u, err := url.Parse(a.Server); err == nil && u.Host != "" {
		host = u.Host
	}
	switch {
	case a.User == "":
		return host
	case host == "":
		return a.User
	case strings.Contains(a.User, "@"):
		return a.User + " on " + host
	}
	return a.User + "@" + host
}

// stateText is the state part of an account's title, in short words.
func stateText(a ipc.AccountStatus, busy string, now time.Time) string {
	switch busy {
	case busySignIn:
		return "signing in…"
	case busyRevoke:
		return "revoking…"
	}
	withErr := func(s string) string {
		if a.LastError != "" {
			return s + " (" + shortError(a.LastError) + ")"
		}
		return s
	}
	switch a.State {
	case stateSignedIn:
		s := "signed in"
		if v := validFor(a, now); v != "" {
			s += ", token valid " + v
		}
		if a.Degraded {
			s += ", keychain write failing"
		}
		if a.Store != "" {
			s += ", " + a.Store // "keychain locked: run ncagent unlock"
		}
		return s
	case stateNeedsLogin:
		return withErr("needs sign-in")
	case stateOffline:
		return withErr("offline")
	case stateSignedOut:
		return "signed out"
	case stateSigningIn:
		return "signing in…"
	}
	if a.Store != "" {
		return a.Store // the secret cannot be read: the store's state says why
	}
	return withErr(a.State)
}

// validFor is how long the longest-lived cached token stays valid ("4 min"),
// or "" when no cached token is valid.
func validFor(a ipc.AccountStatus, now time.Time) string {
	var last time.Time
	for _, t := range a.Tokens {
		if t.ExpiresAt.After(last) {
			last = t.ExpiresAt
		}
	}
	left := last.Sub(now)
	switch {
	case last.IsZero() || left <= 0:
		return ""
	case left < time.Minute:
		return "<1 min"
	case left < 2*time.Hour:
		return fmt.Sprintf("%d min", int(left/time.Minute))
	}
	return fmt.Sprintf("%d h", int(left/time.Hour))
}

// shortError turns an error text into a few words for a menu title: known
// causes by name, otherwise the last clause, cut to 48 characters.
func shortError(s string) string {
	low := strings.ToLower(s)
	for _, c := range []struct{ has, say string }{
		{"invalid_grant", "sign-in expired"},
		{"no such host", "server not found"},
		{"connection refused", "connection refused"},
		{"deadline exceeded", "no answer"},
		{"timeout", "no answer"},
		{"certificate", "certificate problem"},
		{"keychain", "keychain problem"},
		{"network is unreachable", "no network"},
	} {
		if strings.Contains(low, c.has) {
			return c.say
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	const max = 48
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return s
}
