package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// fakeIdP is a scriptable token endpoint with refresh token rotation. By
// default it accepts only the current refresh token, rotates it on every
// refresh, echoes the requested scope and answers expires_in 300.
type fakeIdP struct {
	*httptest.Server

	mu          sync.Mutex // guards every field below
	current     string     // the valid refresh token
	n           int        // tokens issued
	rotate      bool
	ignoreScope string                             // when set, every refresh grants this scope
	refreshExp  int                                // refresh_expires_in to send; 0: none
	faults      []func(w http.ResponseWriter) bool // consumed in order before normal handling
	forms       []url.Values                       // every token request's form
	authz       []string                           // every token request's Authorization header
	revoked     []url.Values
	noRevoke    bool
	exchange    func(form url.Values) (int, any) // answers the token-exchange grant
	oldUsed     int                              // refresh requests with a superseded token
	issued      map[string]bool                  // every refresh token issued
}

func newFakeIdP(t testing.TB, firstRefresh string) *fakeIdP {
	t.Helper()
	f := &fakeIdP{current: firstRefresh, rotate: true, issued: map[string]bool{firstRefresh: true}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		noRevoke := f.noRevoke
		f.mu.Unlock()
		md := map[string]any{"issuer": f.URL, "token_endpoint": f.URL + "/token", "jwks_uri": f.URL + "/jwks"}
		if !noRevoke {
			md["revocation_endpoint"] = f.URL + "/revoke"
		}
		json.NewEncoder(w).Encode(md)
	})
	mux.HandleFunc("/token", f.token)
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.revoked = append(f.revoked, r.PostForm)
		if r.PostForm.Get("token") == f.current {
			f.current = ""
		}
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	f.forms = append(f.forms, r.PostForm)
	f.authz = append(f.authz, r.Header.Get("Authorization"))
	if len(f.faults) > 0 {
		fault := f.faults[0]
		f.faults = f.faults[1:]
		if fault(w) {
			f.mu.Unlock()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.PostForm.Get("grant_type") {
	case "refresh_token":
	case grantTokenExchange:
		ex := f.exchange
		f.mu.Unlock()
		if ex == nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "unsupported_grant_type"})
			return
		}
		code, body := ex(r.PostForm)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
		return
	default:
		f.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "unsupported_grant_type"})
		return
	}
	defer f.mu.Unlock()
	rt := r.PostForm.Get("refresh_token")
	if rt == "" || rt != f.current {
		if f.issued[rt] {
			f.oldUsed++
			f.current = "" // like fosite: reuse revokes the family
		}
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "refresh token " + rt + " is not valid"})
		return
	}
	f.n++
	resp := map[string]any{
		"access_token": fmt.Sprintf("at-%d", f.n),
		"token_type":   "bearer",
		"expires_in":   300,
	}
	if sc := r.PostForm.Get("scope"); f.ignoreScope != "" {
		resp["scope"] = f.ignoreScope
	} else if sc != "" {
		resp["scope"] = sc
	}
	if f.rotate {
		f.current = fmt.Sprintf("rt-%d", f.n)
		f.issued[f.current] = true
		resp["refresh_token"] = f.current
	}
	if f.refreshExp > 0 {
		resp["refresh_expires_in"] = f.refreshExp
	}
	json.NewEncoder(w).Encode(resp)
}

// refreshCalls returns how many refresh requests arrived.
func (f *fakeIdP) refreshCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.forms {
		if v.Get("grant_type") == "refresh_token" {
			n++
		}
	}
	return n
}

func (f *fakeIdP) lastForm() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forms) == 0 {
		return nil
	}
	return f.forms[len(f.forms)-1]
}

func (f *fakeIdP) addFaults(fs ...func(w http.ResponseWriter) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, fs...)
}

func (f *fakeIdP) currentRefresh() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

func status(code int, header ...string) func(w http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		return true
	}
}

func rawBody(code int, body string) func(w http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(body))
		return true
	}
}

// eventLog records broker events.
type eventLog struct {
	mu sync.Mutex // guards evs
	ev []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) states() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []State
	for _, e := range l.ev {
		s = append(s, e.State)
	}
	return s
}

func (l *eventLog) has(st State) bool {
	for _, s := range l.states() {
		if s == st {
			return true
		}
	}
	return false
}

// testBroker wires a Broker to f with one oidc account "work" whose store
// holds f's first refresh token.
type testBroker struct {
	*Broker
	store  *memStore
	events *eventLog
	clock  *testutil.Clock
	sleeps []time.Duration
	mu     sync.Mutex // guards sleeps
}

func newTestBroker(t *testing.T, f *fakeIdP, mod func(*Account)) *testBroker {
	t.Helper()
	tb := &testBroker{store: newMemStore(), events: &eventLog{}, clock: newFakeClock()}
	tb.Broker = New(Options{Store: tb.store, Now: tb.clock.Now, OnEvent: tb.events.add})
	// No real waiting between retries: record the waits instead.
	tb.sleep = func(ctx context.Context, d time.Duration) error {
		tb.mu.Lock()
		tb.sleeps = append(tb.sleeps, d)
		tb.mu.Unlock()
		return ctx.Err()
	}
	a := Account{Name: "work", Kind: KindOIDC, Issuer: f.URL, ClientID: "ncagent", Scopes: []string{"openid", "files"}, Server: "http://127.0.0.1:1"}
	if mod != nil {
		mod(&a)
	}
	if err := tb.SetAccount(a); err != nil {
		t.Fatal(err)
	}
	tb.store.set("work", Secret(f.currentRefresh()))
	return tb
}

func (tb *testBroker) waits() []time.Duration {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]time.Duration(nil), tb.sleeps...)
}

// memRefresh returns the account's in-memory refresh token.
func (tb *testBroker) memRefresh(t *testing.T) Secret {
	t.Helper()
	a := tb.get("work")
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.secret
}

func tok(t *testing.T, b *Broker, scopes ...string) Token {
	t.Helper()
	got, err := b.Token(context.Background(), TokenRequest{Account: "work", Scopes: scopes})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	return got
}

func joinScopes(s []string) string { return strings.Join(s, " ") }
