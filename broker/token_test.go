package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

func TestTokenRefreshAndCache(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	got := tok(t, tb.Broker)
	if got.AccessToken != "at-1" || got.TokenType != "Bearer" {
		t.Fatalf("got token %v type %q, want the first access token as Bearer", got, got.TokenType)
	}
	if got, want := joinScopes(got.Scopes), "files openid"; got != want {
		t.Errorf("got scopes %q, want %q", got, want)
	}
	form := f.lastForm()
	for k, want := range map[string]string{"grant_type": "refresh_token", "refresh_token": "rt-0", "scope": "files openid", "client_id": "ncagent"} {
		if got := form.Get(k); got != want {
			t.Errorf("form %s: got %q, want %q", k, got, want)
		}
	}
	// Cached: same scopes in another order, no new call.
	tok(t, tb.Broker, "openid", "files", "openid")
	if got := f.refreshCalls(); got != 1 {
		t.Errorf("got %d refresh calls, want 1 (cache hit)", got)
	}
	if s, _ := tb.store.get("work"); s != "rt-1" {
		t.Error("store does not hold the rotated refresh token")
	}
	// Down-scoped request is a new cache key.
	if got := tok(t, tb.Broker, "files"); got.AccessToken != "at-2" {
		t.Errorf("got a cached token for another scope set, want a new one")
	}
	// Early refresh: within 30s of expiry the token is refreshed.
	tb.clock.Advance(271 * time.Second)
	if got := tok(t, tb.Broker, "files"); got.AccessToken != "at-3" {
		t.Errorf("got the old token within the early-refresh window, want a refreshed one")
	}
	// MinValid beyond the remaining life forces a refresh.
	tb.clock.Advance(20 * time.Second)
	if _, err := tb.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}, MinValid: 290 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// MinValid beyond the provider's lifetime (5m) is refused without one.
	_, err := tb.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}, MinValid: 10 * time.Minute})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "min_valid 10m exceeds the provider's token lifetime of 5m") {
		t.Fatalf("got %v, want the min_valid error", err)
	}
	if got := f.refreshCalls(); got != 4 {
		t.Errorf("got %d refresh calls, want 4", got)
	}
	if got := f.oldUsed; got != 0 {
		t.Errorf("got %d uses of superseded refresh tokens, want 0", got)
	}
}

func TestTokenAudience(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	tests := []struct{ aud, wantAudience, wantResource string }{
		{"nextcloud", "nextcloud", ""},
		{"https://cloud.example.com", "https://cloud.example.com", "https://cloud.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.aud, func(t *testing.T) {
			got, err := tb.Token(context.Background(), TokenRequest{Account: "work", Audience: tt.aud})
			if err != nil {
				t.Fatal(err)
			}
			if got.Audience != tt.aud {
				t.Errorf("got audience %q, want %q", got.Audience, tt.aud)
			}
			form := f.lastForm()
			if form.Get("audience") != tt.wantAudience || form.Get("resource") != tt.wantResource {
				t.Errorf("got audience %q resource %q, want %q %q", form.Get("audience"), form.Get("resource"), tt.wantAudience, tt.wantResource)
			}
		})
	}
}

func TestTokenUnknownAccount(t *testing.T) {
	b := New(Options{Store: newMemStore()})
	_, err := b.Token(context.Background(), TokenRequest{Account: "nope"})
	var ae *AccountError
	if !errors.Is(err, ErrUnknownAccount) || !errors.As(err, &ae) || ae.Account != "nope" {
		t.Fatalf("got %v, want an *AccountError wrapping ErrUnknownAccount", err)
	}
}

func TestTransientFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    []func(http.ResponseWriter) bool
		wantErr   error
		wantCalls int
		minWait   time.Duration // at least one wait of this length (Retry-After)
	}{
		{"503 then success", []func(http.ResponseWriter) bool{status(503), status(503)}, nil, 3, 0},
		{"502 500 504 then success", []func(http.ResponseWriter) bool{status(502), status(500), status(504)}, nil, 4, 0},
		{"429 with Retry-After", []func(http.ResponseWriter) bool{status(429, "Retry-After", "2")}, nil, 2, 2 * time.Second},
		{"persistent 503", []func(http.ResponseWriter) bool{status(503), status(503), status(503), status(503), status(503)}, ErrUnavailable, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			tb := newTestBroker(t, f, nil)
			f.addFaults(tt.faults...)
			got, err := tb.Token(context.Background(), TokenRequest{Account: "work"})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got.AccessToken == "" {
				t.Fatal("got no token")
			}
			if calls := f.refreshCalls(); calls != tt.wantCalls {
				t.Errorf("got %d calls, want %d", calls, tt.wantCalls)
			}
			waits := tb.waits()
			if len(waits) != tt.wantCalls-1 {
				t.Errorf("got %d waits, want %d", len(waits), tt.wantCalls-1)
			}
			if tt.minWait > 0 && (len(waits) == 0 || waits[0] < tt.minWait) {
				t.Errorf("got waits %v, want the first to honor Retry-After %v", waits, tt.minWait)
			}
			for i, w := range waits {
				if ceil := tb.backoffBase << i; tt.minWait == 0 && w > ceil {
					t.Errorf("wait %d: got %v, want at most %v (full jitter)", i, w, ceil)
				}
			}
			if tt.wantErr != nil {
				if st, _ := tb.AccountStatus("work"); st.State != StateOffline {
					t.Errorf("got state %q, want %q", st.State, StateOffline)
				}
				if !tb.events.has(StateOffline) {
					t.Error("got no offline event")
				}
			}
		})
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	f.addFaults(status(429, "Retry-After", "60"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := tb.Token(ctx, TokenRequest{Account: "work"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if len(tb.waits()) != 0 || time.Since(start) > time.Second {
		t.Errorf("got waits %v after %v, want none: a 60s Retry-After cannot fit a 2s deadline", tb.waits(), time.Since(start))
	}
	if got := f.refreshCalls(); got != 1 {
		t.Errorf("got %d calls, want 1", got)
	}
}

func TestSlowIdPShortDeadline(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	release := make(chan struct{})
	f.addFaults(func(w http.ResponseWriter) bool {
		f.mu.Unlock() // let other requests in while this one hangs
		<-release
		f.mu.Lock()
		return false // then answer normally: rotates the refresh token
	})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tb.Token(ctx, TokenRequest{Account: "work"})
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("got an answer after %v, want one soon after the 100ms deadline", elapsed)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	// A second caller with a short deadline does not block either.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := tb.Token(ctx2, TokenRequest{Account: "work"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second caller: got %v, want ErrUnavailable", err)
	}
	// The IdP answers late: the abandoned call still adopts the rotated
	// refresh token, so the chain survives.
	close(release)
	got := tok(t, tb.Broker) // waits for the chain, then serves the cached result
	if got.AccessToken != "at-1" {
		t.Errorf("got a new refresh, want the late answer's token to be cached and served")
	}
	if s, _ := tb.store.get("work"); s != "rt-1" {
		t.Error("store does not hold the late answer's refresh token")
	}
	if f.oldUsed != 0 {
		t.Errorf("got %d reuses of a superseded refresh token, want 0", f.oldUsed)
	}
	tb.clientsMu.Lock()
	for _, c := range tb.clients {
		c.CloseIdleConnections()
	}
	tb.clientsMu.Unlock()
	f.CloseClientConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("got %d goroutines, want at most %d: a goroutine stayed blocked", n, before)
	}
}

func TestMalformedResponses(t *testing.T) {
	tests := []struct {
		name  string
		fault func(http.ResponseWriter) bool
	}{
		{"malformed JSON", rawBody(200, `{"access_token": "at-x", "refresh_token": `)},
		{"no access_token", rawBody(200, `{"token_type":"bearer","expires_in":300}`)},
		{"HTML page", rawBody(200, `<html>login</html>`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			tb := newTestBroker(t, f, nil)
			f.addFaults(tt.fault)
			_, err := tb.Token(context.Background(), TokenRequest{Account: "work"})
			if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNeedsLogin) {
				t.Fatalf("got %v, want a plain response error", err)
			}
			if got := f.refreshCalls(); got != 1 {
				t.Errorf("got %d calls, want 1 (not retried)", got)
			}
			if got := tb.memRefresh(t); got != "rt-0" {
				t.Error("the in-memory refresh token changed, want the chain untouched")
			}
			// The chain still works with the same refresh token.
			if got := tok(t, tb.Broker); got.AccessToken != "at-1" {
				t.Error("got no token after the bad response")
			}
			if got := f.lastForm().Get("refresh_token"); got != "rt-0" {
				t.Error("the next refresh did not reuse the untouched refresh token")
			}
		})
	}
}

func TestSingleTokenMode(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	f.ignoreScope = "openid files calendar"
	tb := newTestBroker(t, f, nil)
	first := tok(t, tb.Broker, "files")
	st, _ := tb.AccountStatus("work")
	if !st.SingleToken {
		t.Fatal("got SingleToken false, want true after the IdP granted wider scopes")
	}
	second := tok(t, tb.Broker, "calendar")
	third := tok(t, tb.Broker, "openid", "files")
	if second.AccessToken != first.AccessToken || third.AccessToken != first.AccessToken {
		t.Error("sibling scope requests got other tokens, want the one token of the account")
	}
	if got := f.refreshCalls(); got != 1 {
		t.Errorf("got %d refresh calls, want 1", got)
	}
	// A refresh replaces the one token.
	tb.clock.Advance(5 * time.Minute)
	tok(t, tb.Broker, "calendar")
	st, _ = tb.AccountStatus("work")
	if len(st.Tokens) != 1 {
		t.Errorf("got %d cached tokens, want 1", len(st.Tokens))
	}
}

func TestInvalidGrant(t *testing.T) {
	t.Run("store re-read once then needs-login", func(t *testing.T) {
		f := newFakeIdP(t, "rt-0")
		tb := newTestBroker(t, f, nil)
		tok(t, tb.Broker, "files")
		tb.clock.Advance(10 * time.Minute) // cached token expired
		getsBefore, _ := tb.store.counts()
		f.addFaults(rawBody(400, `{"error":"invalid_grant","error_description":"token expired"}`))
		_, err := tb.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}})
		var ie *IdPError
		if !errors.Is(err, ErrNeedsLogin) || !errors.As(err, &ie) || ie.Code != "invalid_grant" {
			t.Fatalf("got %v, want ErrNeedsLogin carrying the invalid_grant IdPError", err)
		}
		if gets, _ := tb.store.counts(); gets != getsBefore+1 {
			t.Errorf("got %d store reads, want 1", gets-getsBefore)
		}
		st, _ := tb.AccountStatus("work")
		if st.State != StateNeedsLogin || len(st.Tokens) != 0 {
			t.Errorf("got state %q with %d tokens, want needs-login with none", st.State, len(st.Tokens))
		}
		if !tb.events.has(StateNeedsLogin) {
			t.Error("got no needs-login event")
		}
		if tb.memRefresh(t) != "" {
			t.Error("the in-memory refresh token was kept, want it forgotten")
		}
		calls := f.refreshCalls()
		if _, err := tb.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); !errors.Is(err, ErrNeedsLogin) {
			t.Errorf("got %v, want ErrNeedsLogin", err)
		}
		if f.refreshCalls() != calls {
			t.Error("a needs-login account called the IdP")
		}
		// Signing in again recovers.
		if err := tb.SignedIn(context.Background(), "work", "rt-new", nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		f.current = "rt-new"
		f.mu.Unlock()
		if got := tok(t, tb.Broker); got.AccessToken == "" {
			t.Error("got no token after signing in again")
		}
	})
	t.Run("store holds a newer token", func(t *testing.T) {
		f := newFakeIdP(t, "rt-0")
		tb := newTestBroker(t, f, nil)
		tok(t, tb.Broker)
		// Someone signed in again: the IdP now only accepts rt-other,
		// which is in the store.
		f.mu.Lock()
		f.current = "rt-other"
		f.issued = map[string]bool{"rt-other": true} // a new grant; the old one expired
		f.mu.Unlock()
		tb.store.set("work", "rt-other")
		tb.clock.Advance(10 * time.Minute)
		got, err := tb.Token(context.Background(), TokenRequest{Account: "work"})
		if err != nil {
			t.Fatalf("got %v, want a retry with the stored token to succeed", err)
		}
		if got.AccessToken == "" || f.lastForm().Get("refresh_token") != "rt-other" {
			t.Error("the retry did not use the stored refresh token")
		}
		if st, _ := tb.AccountStatus("work"); st.State != StateSignedIn {
			t.Errorf("got state %q, want signed-in", st.State)
		}
	})
}

func TestServeCachedDuringOutage(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	first := tok(t, tb.Broker)
	tb.clock.Advance(280 * time.Second) // 20s left: below early refresh
	f.addFaults(status(503), status(503), status(503), status(503))
	got, err := tb.Token(context.Background(), TokenRequest{Account: "work", MinValid: time.Minute})
	if err != nil {
		t.Fatalf("got %v, want the still-valid cached token", err)
	}
	if got.AccessToken != first.AccessToken {
		t.Error("got another token, want the cached one")
	}
	if st, _ := tb.AccountStatus("work"); st.State != StateOffline {
		t.Errorf("got state %q, want offline", st.State)
	}
	// Recovery: back to signed-in, with an event.
	tok(t, tb.Broker, "files")
	if st, _ := tb.AccountStatus("work"); st.State != StateSignedIn {
		t.Errorf("got state %q, want signed-in", st.State)
	}
	states := tb.events.states()
	if len(states) < 2 || states[len(states)-2] != StateOffline || states[len(states)-1] != StateSignedIn {
		t.Errorf("got events %v, want offline then signed-in at the end", states)
	}
	// Expired cache and an outage: an error.
	tb.clock.Advance(10 * time.Minute)
	f.addFaults(status(503), status(503), status(503), status(503))
	if _, err := tb.Token(context.Background(), TokenRequest{Account: "work"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
}

func TestRedirectOnTokenPostRefused(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	f.addFaults(func(w http.ResponseWriter) bool {
		w.Header().Set("Location", "http://127.0.0.1:9/steal")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return true
	})
	_, err := tb.Token(context.Background(), TokenRequest{Account: "work"})
	if !errors.Is(err, ErrRedirect) {
		t.Fatalf("got %v, want ErrRedirect", err)
	}
	if got := f.refreshCalls(); got != 1 {
		t.Errorf("got %d calls, want 1 (not retried)", got)
	}
}

func TestClientAuthentication(t *testing.T) {
	const id, secret = "nc agent:1", "p@ss word/+"
	tests := []struct {
		name       string
		auth       ClientAuth
		secret     Secret
		wantBasic  string
		wantForm   url.Values
		wantAbsent []string
	}{
		{"public", "", "", "", url.Values{"client_id": {id}}, []string{"client_secret"}},
		{"client_secret_post", ClientAuthPost, secret, "", url.Values{"client_id": {id}, "client_secret": {secret}}, nil},
		{"client_secret_basic", ClientAuthBasic, secret,
			// RFC 6749 §2.3.1: form-urlencode id and secret, then Basic.
			"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))),
			nil, []string{"client_secret", "client_id"}},
		{"default with secret is basic", "", secret,
			"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret))),
			nil, []string{"client_secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			tb := newTestBroker(t, f, func(a *Account) { a.ClientID, a.ClientAuth, a.ClientSecret = id, tt.auth, tt.secret })
			tok(t, tb.Broker)
			f.mu.Lock()
			authz := f.authz[len(f.authz)-1]
			f.mu.Unlock()
			if authz != tt.wantBasic {
				t.Errorf("got Authorization header of %d bytes, want the expected Basic value", len(authz))
			}
			form := f.lastForm()
			for k, v := range tt.wantForm {
				if form.Get(k) != v[0] {
					t.Errorf("form %s: got %q, want %q", k, form.Get(k), v[0])
				}
			}
			for _, k := range tt.wantAbsent {
				if form.Has(k) {
					t.Errorf("form has %s, want it absent", k)
				}
			}
		})
	}
}

func TestStorePutFailureKeepsChain(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	tb.store.failPuts(errStoreLocked)
	got := tok(t, tb.Broker, "files")
	if got.AccessToken == "" {
		t.Fatal("got no token")
	}
	st, _ := tb.AccountStatus("work")
	if !st.Degraded || st.LastError == "" {
		t.Errorf("got degraded=%v last error %q, want degraded with an error", st.Degraded, st.LastError)
	}
	if tb.memRefresh(t) != "rt-1" {
		t.Error("the rotated refresh token is not kept in memory")
	}
	// Further refreshes use the newest token (never rt-0 again); each
	// retries the store write first.
	_, putsBefore := tb.store.counts()
	tok(t, tb.Broker, "openid")
	tok(t, tb.Broker, "calendar")
	if f.oldUsed != 0 {
		t.Errorf("got %d uses of superseded refresh tokens, want 0", f.oldUsed)
	}
	if _, puts := tb.store.counts(); puts-putsBefore < 4 {
		t.Errorf("got %d store writes, want a retry before and a write after each refresh", puts-putsBefore)
	}
	// The store recovers: the Run loop catches up with backoff.
	tb.store.failPuts(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- tb.Run(ctx) }()
	tb.clock.Advance(2 * time.Minute)
	tb.wake()
	testutil.WaitFor(t, 3*time.Second, "the rotated token stored", func() bool { s, _ := tb.store.get("work"); return s == tb.memRefresh(t) })
	testutil.WaitFor(t, 3*time.Second, "work no longer degraded", func() bool { st, _ := tb.AccountStatus("work"); return !st.Degraded })
	// Listeners (the tray) hear of the recovery: the last event carries
	// no error.
	testutil.WaitFor(t, 3*time.Second, "an event of the recovery", func() bool {
		tb.events.mu.Lock()
		defer tb.events.mu.Unlock()
		last := tb.events.ev[len(tb.events.ev)-1]
		return last.Err == nil && last.State == StateSignedIn
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: got %v, want nil", err)
	}
}

func TestConcurrentIdenticalRequestsShareOneRefresh(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	var wg sync.WaitGroup
	tokens := make([]Secret, 100)
	for i := range tokens {
		wg.Go(func() {
			got, err := tb.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}})
			if err != nil {
				t.Error(err)
			}
			tokens[i] = got.AccessToken
		})
	}
	wg.Wait()
	if got := f.refreshCalls(); got != 1 {
		t.Errorf("got %d refresh calls, want 1", got)
	}
	if slices.ContainsFunc(tokens, func(s Secret) bool { return s != tokens[0] }) {
		t.Error("callers got different tokens, want one shared")
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name       string
		refreshExp int
		keepAlive  time.Duration
		wantAfter  time.Duration // next keep-alive after a refresh
	}{
		{"refresh_expires_in", 1200, 0, 900 * time.Second},
		{"default interval", 0, 0, 10 * time.Minute},
		{"configured interval", 0, 3 * time.Minute, 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			f.refreshExp = tt.refreshExp
			tb := newTestBroker(t, f, func(a *Account) { a.KeepAlive = tt.keepAlive })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error)
			go func() { done <- tb.Run(ctx) }()
			// Run loads the account and refreshes at once: when the stored
			// token was issued is unknown.
			testutil.WaitFor(t, 3*time.Second, "the first refresh", func() bool { return f.refreshCalls() == 1 })
			testutil.WaitFor(t, 3*time.Second, "a last refresh in the status", func() bool { st, _ := tb.AccountStatus("work"); return !st.LastRefresh.IsZero() })
			a := tb.get("work")
			a.mu.RLock()
			next, refreshExp := a.nextKeep, a.refreshExp
			a.mu.RUnlock()
			if got := next.Sub(tb.clock.Now()); got != tt.wantAfter {
				t.Errorf("got next keep-alive in %v, want %v", got, tt.wantAfter)
			}
			if tt.refreshExp > 0 && !refreshExp.Equal(tb.clock.Now().Add(time.Duration(tt.refreshExp)*time.Second)) {
				t.Errorf("got refresh expiry %v, want now+%ds", refreshExp, tt.refreshExp)
			}
			// Not due yet: nothing happens.
			tb.clock.Advance(tt.wantAfter - time.Second)
			tb.wake()
			time.Sleep(20 * time.Millisecond)
			if got := f.refreshCalls(); got != 1 {
				t.Errorf("got %d refreshes before the keep-alive was due, want 1", got)
			}
			tb.clock.Advance(time.Second)
			tb.wake()
			testutil.WaitFor(t, 3*time.Second, "the keep-alive refresh", func() bool { return f.refreshCalls() == 2 })
			if got := f.lastForm().Get("refresh_token"); got != "rt-1" {
				t.Error("keep-alive did not use the current refresh token")
			}
			cancel()
			<-done
		})
	}
	t.Run("disabled", func(t *testing.T) {
		f := newFakeIdP(t, "rt-0")
		tb := newTestBroker(t, f, func(a *Account) { a.KeepAlive = -1 })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- tb.Run(ctx) }()
		testutil.WaitFor(t, 3*time.Second, "work signed in", func() bool { st, _ := tb.AccountStatus("work"); return st.State == StateSignedIn })
		tb.clock.Advance(time.Hour)
		tb.wake()
		time.Sleep(20 * time.Millisecond)
		cancel()
		<-done
		if got := f.refreshCalls(); got != 0 {
			t.Errorf("got %d refreshes, want 0 with keep-alive disabled", got)
		}
	})
}

func TestSignedOutStore(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	tb.store.Delete("work")
	_, err := tb.Token(context.Background(), TokenRequest{Account: "work"})
	if !errors.Is(err, ErrNeedsLogin) || !errors.Is(err, ErrSignedOut) {
		t.Fatalf("got %v, want ErrNeedsLogin and ErrSignedOut", err)
	}
	if st, _ := tb.AccountStatus("work"); st.State != StateSignedOut {
		t.Errorf("got state %q, want signed-out", st.State)
	}
	if f.refreshCalls() != 0 {
		t.Error("called the IdP without a refresh token")
	}
}

func TestSignedInStoreFailureKeepsState(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	first := tok(t, tb.Broker)
	tb.store.failPuts(errStoreLocked)
	err := tb.SignedIn(context.Background(), "work", "rt-signin", &Token{AccessToken: "at-signin"}, time.Time{})
	if !errors.Is(err, errStoreLocked) {
		t.Fatalf("got %v, want the store error", err)
	}
	if got := tok(t, tb.Broker); got.AccessToken != first.AccessToken {
		t.Error("a failed sign-in hand-over changed the cache")
	}
	if tb.memRefresh(t) != "rt-1" {
		t.Error("a failed sign-in hand-over changed the refresh token")
	}
	tb.store.failPuts(nil)
	if err := tb.SignedIn(context.Background(), "work", "rt-signin", &Token{AccessToken: "at-signin", Scopes: []string{"offline_access", "openid", "files"}, Expiry: tb.clock.Now().Add(time.Hour)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The sign-in's token carries offline_access, which the account's
	// default scopes do not: it still serves the first default request.
	before := f.refreshCalls()
	if got := tok(t, tb.Broker); got.AccessToken != "at-signin" {
		t.Error("the sign-in's initial token is not served")
	}
	if got := f.refreshCalls(); got != before {
		t.Errorf("refresh calls after sign-in: got %d, want %d", got, before)
	}
	if s, _ := tb.store.get("work"); s != "rt-signin" {
		t.Error("the store does not hold the sign-in's secret")
	}
}

func TestMarkNeedsLogin(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	tok(t, tb.Broker)
	tb.MarkNeedsLogin("work", errors.New("nextcloud answered 401"))
	st, _ := tb.AccountStatus("work")
	if st.State != StateNeedsLogin || len(st.Tokens) != 0 {
		t.Errorf("got state %q with %d tokens, want needs-login with none", st.State, len(st.Tokens))
	}
	if _, err := tb.Token(context.Background(), TokenRequest{Account: "work"}); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("got %v, want ErrNeedsLogin", err)
	}
}

func TestSetAccountValidation(t *testing.T) {
	tests := []struct {
		name string
		acct Account
		ok   bool
	}{
		{"oidc ok", Account{Name: "a", Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "c"}, true},
		{"oidc token override only", Account{Name: "a", Kind: KindOIDC, ClientID: "c", Endpoints: Endpoints{Token: "https://p/token"}}, true},
		{"app password ok", Account{Name: "a", Kind: KindAppPassword, Server: "https://cloud.example.com", Username: "u"}, true},
		{"no name", Account{Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "c"}, false},
		{"name with space", Account{Name: "a b", Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "c"}, false},
		{"unknown kind", Account{Name: "a", Kind: "saml"}, false},
		{"oidc without issuer", Account{Name: "a", Kind: KindOIDC, ClientID: "c"}, false},
		{"oidc without client", Account{Name: "a", Kind: KindOIDC, Issuer: "https://idp.example.com"}, false},
		{"plain http issuer", Account{Name: "a", Kind: KindOIDC, Issuer: "http://idp.example.com", ClientID: "c"}, false},
		{"basic without secret", Account{Name: "a", Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "c", ClientAuth: ClientAuthBasic}, false},
		{"app password without user", Account{Name: "a", Kind: KindAppPassword, Server: "https://cloud.example.com"}, false},
		{"bad CA", Account{Name: "a", Kind: KindOIDC, Issuer: "https://idp.example.com", ClientID: "c", CAPEM: []byte("x")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(Options{Store: newMemStore()}).SetAccount(tt.acct)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestStatusAndRemove(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	tb := newTestBroker(t, f, nil)
	tb.SetAccount(Account{Name: "alpha", Kind: KindAppPassword, Server: "http://127.0.0.1:1", Username: "u"})
	tok(t, tb.Broker, "files")
	st := tb.Status()
	if len(st) != 2 || st[0].Name != "alpha" || st[1].Name != "work" {
		t.Fatalf("got %d accounts, want alpha and work in order", len(st))
	}
	if len(st[1].Tokens) != 1 || joinScopes(st[1].Tokens[0].Scopes) != "files" {
		t.Errorf("got cached tokens %v, want one for files", st[1].Tokens)
	}
	tb.RemoveAccount("work")
	if _, err := tb.AccountStatus("work"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("got %v, want ErrUnknownAccount after removal", err)
	}
}
