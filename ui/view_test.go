package ui

import (
	"errors"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func acct(name, state string, mod ...func(*ipc.AccountStatus)) ipc.AccountStatus {
	a := ipc.AccountStatus{Name: name, Kind: "oidc", State: state, Server: "https://cloud.example.com", User: "alice"}
	for _, m := range mod {
		m(&a)
	}
	return a
}

func withToken(left time.Duration) func(*ipc.AccountStatus) {
	return func(a *ipc.AccountStatus) {
		a.Tokens = append(a.Tokens, ipc.CachedToken{Audience: "nextcloud", ExpiresAt: testNow.Add(left)})
	}
}

func withErr(s string) func(*ipc.AccountStatus) {
	return func(a *ipc.AccountStatus) { a.LastError = s }
}

func TestAccountView(t *testing.T) {
	tests := []struct {
		name                string
		a                   ipc.AccountStatus
		busy                string
		title               string
		signIn              itemView
		revokeVis, revokeOn bool
	}{
		{"signed in with token", acct("work", stateSignedIn, withToken(4*time.Minute+30*time.Second)), "",
			"work — alice@cloud.example.com — signed in, token valid 4 min",
			itemView{Label: "Sign in…"}, true, true},
		{"signed in, longest token counts", acct("work", stateSignedIn, withToken(time.Minute), withToken(3*time.Hour)), "",
			"work — alice@cloud.example.com — signed in, token valid 3 h",
			itemView{Label: "Sign in…"}, true, true},
		{"signed in, token expired", acct("work", stateSignedIn, withToken(-time.Minute)), "",
			"work — alice@cloud.example.com — signed in",
			itemView{Label: "Sign in…"}, true, true},
		{"signed in, under a minute", acct("work", stateSignedIn, withToken(20*time.Second)), "",
			"work — alice@cloud.example.com — signed in, token valid <1 min",
			itemView{Label: "Sign in…"}, true, true},
		{"needs login with idp error", acct("work", stateNeedsLogin, withErr("idp_error: invalid_grant: token reused")), "",
			"work — alice@cloud.example.com — needs sign-in (sign-in expired)",
			itemView{Label: "Sign in again…", Visible: true, Enabled: true}, true, true},
		{"offline", acct("home", stateOffline, withErr("Get https://id.example.com/token: dial tcp: lookup id.example.com: no such host")), "",
			"home — alice@cloud.example.com — offline (server not found)",
			itemView{Label: "Sign in…"}, true, true},
		{"signed out", acct("work", stateSignedOut), "",
			"work — alice@cloud.example.com — signed out",
			itemView{Label: "Sign in…", Visible: true, Enabled: true}, false, false},
		{"signed in, keychain locked", acct("work", stateSignedIn, withToken(4*time.Minute+30*time.Second), func(a *ipc.AccountStatus) { a.Store = "keychain locked: run ncagent unlock" }), "",
			"work — alice@cloud.example.com — signed in, token valid 4 min, keychain locked: run ncagent unlock",
			itemView{Label: "Sign in…"}, true, true},
		{"secret unreadable: keychain locked", acct("work", "keychain-locked", func(a *ipc.AccountStatus) { a.Store = "keychain locked: run ncagent unlock" }), "",
			"work — alice@cloud.example.com — keychain locked: run ncagent unlock",
			itemView{Label: "Sign in…"}, true, true},
		{"tray sign-in running", acct("work", stateNeedsLogin), busySignIn,
			"work — alice@cloud.example.com — signing in…",
			itemView{Label: "Signing in…", Visible: true}, true, false},
		{"agent sign-in running", acct("work", stateSigningIn), "",
			"work — alice@cloud.example.com — signing in…",
			itemView{Label: "Signing in…", Visible: true}, false, false},
		{"email user", acct("work", stateSignedOut, func(a *ipc.AccountStatus) { a.User = "alice@example.org" }), "",
			"work — alice@example.org on cloud.example.com — signed out",
			itemView{Label: "Sign in…", Visible: true, Enabled: true}, false, false},
		{"no user yet", acct("work", stateSignedOut, func(a *ipc.AccountStatus) { a.User = "" }), "",
			"work — cloud.example.com — signed out",
			itemView{Label: "Sign in…", Visible: true, Enabled: true}, false, false},
		{"degraded", acct("work", stateSignedIn, func(a *ipc.AccountStatus) { a.Degraded = true }), "",
			"work — alice@cloud.example.com — signed in, keychain write failing",
			itemView{Label: "Sign in…"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := accountViewOf(tt.a, tt.busy, testNow)
			if v.Title.Label != tt.title {
				t.Errorf("title: got %q, want %q", v.Title.Label, tt.title)
			}
			if v.Title.Enabled {
				t.Errorf("title is enabled; want it disabled")
			}
			if v.SignIn != tt.signIn {
				t.Errorf("sign-in item: got %+v, want %+v", v.SignIn, tt.signIn)
			}
			if v.Revoke.Visible != tt.revokeVis || v.Revoke.Enabled != tt.revokeOn {
				t.Errorf("revoke item: got visible %v enabled %v, want %v %v", v.Revoke.Visible, v.Revoke.Enabled, tt.revokeVis, tt.revokeOn)
			}
			if !v.Open.Visible || v.Server != "https://cloud.example.com" {
				t.Errorf("open item: got visible %v server %q, want visible for https://cloud.example.com", v.Open.Visible, v.Server)
			}
		})
	}
}

func TestOpenNeedsWebURL(t *testing.T) {
	for _, server := range []string{"", "file:///etc/passwd", "javascript:alert(1)", "cloud.example.com"} {
		v := accountViewOf(acct("work", stateSignedIn, func(a *ipc.AccountStatus) { a.Server = server }), "", testNow)
		if v.Open.Visible || v.Server != "" {
			t.Errorf("server %q: got open visible %v server %q, want hidden", server, v.Open.Visible, v.Server)
		}
	}
}

func TestBuildView(t *testing.T) {
	tests := []struct {
		name     string
		accounts []ipc.AccountStatus
		err      error
		icon     iconState
		tooltip  string
		info     string
	}{
		{"none", nil, nil, iconNone, "ncagent: no accounts yet: choose Add account…", "No accounts yet"},
		{"one signed in", []ipc.AccountStatus{acct("work", stateSignedIn)}, nil, iconOK, "ncagent: work signed in", ""},
		{"two signed in", []ipc.AccountStatus{acct("work", stateSignedIn), acct("home", stateSignedIn)}, nil, iconOK, "ncagent: 2 accounts signed in", ""},
		{"one needs login", []ipc.AccountStatus{acct("work", stateNeedsLogin), acct("home", stateSignedIn)}, nil, iconAttention, "ncagent: work needs sign-in", ""},
		{"two need login", []ipc.AccountStatus{acct("work", stateNeedsLogin), acct("home", stateSignedOut)}, nil, iconAttention, "ncagent: work and home need sign-in", ""},
		{"needs login beats offline", []ipc.AccountStatus{acct("work", stateOffline), acct("home", stateNeedsLogin)}, nil, iconAttention, "ncagent: home needs sign-in", ""},
		{"offline", []ipc.AccountStatus{acct("work", stateOffline), acct("home", stateSignedIn)}, nil, iconOffline, "ncagent: work offline", ""},
		{"keychain locked", []ipc.AccountStatus{acct("work", "keychain-locked", func(a *ipc.AccountStatus) { a.Store = "keychain locked: run ncagent unlock" })}, nil, iconAttention, "ncagent: keychain locked: run ncagent unlock", ""},
		{"status error", nil, errors.New("agent: closed"), iconAttention, "ncagent: status unavailable", "Status unavailable: closed"},
		{"overflow", []ipc.AccountStatus{acct("a", stateSignedIn), acct("b", stateSignedIn), acct("c", stateSignedIn)}, nil, iconOK, "ncagent: 3 accounts signed in", "1 more accounts: run ncagent status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := buildView(ipc.StatusResponse{Accounts: tt.accounts}, tt.err, nil, testNow, 2)
			if v.Icon != tt.icon {
				t.Errorf("icon: got %v, want %v", v.Icon, tt.icon)
			}
			if v.Tooltip != tt.tooltip {
				t.Errorf("tooltip: got %q, want %q", v.Tooltip, tt.tooltip)
			}
			if v.Info.Label != tt.info || v.Info.Visible != (tt.info != "") {
				t.Errorf("info: got %+v, want label %q", v.Info, tt.info)
			}
			if len(v.Accounts) > 2 {
				t.Errorf("got %d account groups, want at most 2", len(v.Accounts))
			}
		})
	}
}

func TestShortError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"idp_error: invalid_grant", "sign-in expired"},
		{"dial tcp 10.0.0.1:443: connect: connection refused", "connection refused"},
		{"context deadline exceeded", "no answer"},
		{"x509: certificate signed by unknown authority", "certificate problem"},
		{"internal: something   odd\nhappened", "something odd happened"},
		{"a very long message that goes on and on and on well past the limit of the menu", "a very long message that goes on and on and on…"},
	}
	for _, tt := range tests {
		if got := shortError(tt.in); got != tt.want {
			t.Errorf("shortError(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
