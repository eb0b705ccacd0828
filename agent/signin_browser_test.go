package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// eventLog records Progress events and hands the first open_url URL to the
// test's scripted browser.
type eventLog struct {
	mu     sync.Mutex // guards events
	events []ipc.LoginEvent
	urls   chan string // receives every open_url URL (buffered)
}

func newEventLog() *eventLog { return &eventLog{urls: make(chan string, 4)} }

func (l *eventLog) progress(ev ipc.LoginEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	if ev.Type == "open_url" {
		l.urls <- ev.URL
	}
}

func (l *eventLog) all() []ipc.LoginEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ipc.LoginEvent(nil), l.events...)
}

// types returns the event types in order.
func (l *eventLog) types() []string {
	var out []string
	for _, ev := range l.all() {
		out = append(out, ev.Type)
	}
	return out
}

// discover fetches the test server's discovery document.
func discover(t *testing.T, issuer string) broker.Metadata {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	defer resp.Body.Close()
	var md broker.Metadata
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatalf("decode discovery: %v", err)
	}
	return md
}

func testHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	c, err := broker.NewHTTPClient(broker.HTTPOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("NewHTTPClient: %v", err)
	}
	return c
}

// browserRequest is a sign-in request for the public client of s.
func browserRequest(t *testing.T, s *idptest.Server, log *eventLog) signInRequest {
	return signInRequest{
		Account:  "work",
		Method:   MethodBrowser,
		Server:   s.URL,
		Issuer:   s.Issuer(),
		ClientID: idptest.PublicClientID,
		Scopes:   []string{"files", "profile"},
		Metadata: discover(t, s.Issuer()),
		HTTP:     testHTTPClient(t),
		Timeout:  20 * time.Second,
		Progress: log.progress,
	}
}

type flowResult struct {
	res signInResult
	err error
}

// startBrowser runs signInBrowser in the background and returns the
// authorization URL it reported and a channel with its outcome.
func startBrowser(t *testing.T, ctx context.Context, r signInRequest, log *eventLog) (string, <-chan flowResult) {
	t.Helper()
	done := make(chan flowResult, 1)
	go func() {
		res, err := signInBrowser(ctx, r)
		done <- flowResult{res, err}
	}()
	select {
	case u := <-log.urls:
		return u, done
	case out := <-done:
		t.Fatalf("signInBrowser returned before reporting a URL: %v", out.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no open_url event within 10s")
	}
	return "", nil
}

func wait(t *testing.T, done <-chan flowResult) flowResult {
	t.Helper()
	select {
	case out := <-done:
		return out
	case <-time.After(15 * time.Second):
		t.Fatal("signInBrowser did not return within 15s")
	}
	return flowResult{}
}

// page is what a scripted browser ended on.
type browserPage struct {
	status int
	body   string
	url    *url.URL // the last URL (the loopback callback)
}

// browse plays the user's browser: it GETs authURL and follows every
// redirect, from the authorization server to the loopback callback.
func browse(t *testing.T, authURL string) browserPage {
	t.Helper()
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("browser: read page: %v", err)
	}
	return browserPage{status: resp.StatusCode, body: string(b), url: resp.Request.URL}
}

// redirectURI returns the redirect_uri of an authorization URL.
func redirectURI(t *testing.T, authURL string) *url.URL {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("parse authorization URL: %v", err)
	}
	ru, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil {
		t.Fatalf("parse redirect_uri: %v", err)
	}
	return ru
}

func TestSignInBrowserSuccess(t *testing.T) {
	tests := []struct {
		name         string
		clientID     string
		secret       func(*idptest.Server) string
		auth         broker.ClientAuth
		redirectHost string
		wantHost     string
	}{
		{name: "public client, localhost", clientID: idptest.PublicClientID, redirectHost: "localhost", wantHost: "localhost"},
		{name: "public client, default", clientID: idptest.PublicClientID, wantHost: "127.0.0.1"},
		{name: "public client, 127.0.0.1", clientID: idptest.PublicClientID, redirectHost: "127.0.0.1", wantHost: "127.0.0.1"},
		{name: "client_secret_basic", clientID: idptest.ConfidentialClientID, auth: broker.ClientAuthBasic,
			secret: func(s *idptest.Server) string { return s.ConfidentialSecret }, wantHost: "127.0.0.1"},
		{name: "client_secret_post", clientID: idptest.PostClientID, auth: broker.ClientAuthPost,
			secret: func(s *idptest.Server) string { return s.PostSecret }, wantHost: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{SendRefreshExpiresIn: true})
			log := newEventLog()
			r := browserRequest(t, s, log)
			r.ClientID = tt.clientID
			r.ClientAuth = tt.auth
			if tt.secret != nil {
				r.ClientSecret = broker.Secret(tt.secret(s))
			}
			r.RedirectHost = tt.redirectHost
			start := time.Now()
			authURL, done := startBrowser(t, context.Background(), r, log)

			// The authorization request (RFC 8252 + PKCE + OIDC).
			au, _ := url.Parse(authURL)
			q := au.Query()
			for k, want := range map[string]string{
				"response_type":         "code",
				"client_id":             tt.clientID,
				"code_challenge_method": "S256",
				"prompt":                "consent",
				"scope":                 "openid profile email files offline_access",
			} {
				if got := q.Get(k); got != want {
					t.Errorf("authorization URL %s: got %q, want %q", k, got, want)
				}
			}
			for _, k := range []string{"state", "nonce", "code_challenge"} {
				if len(q.Get(k)) < 43 {
					t.Errorf("authorization URL %s: got %d characters, want at least 43", k, len(q.Get(k)))
				}
			}
			ru := redirectURI(t, authURL)
			if ru.Scheme != "http" || ru.Hostname() != tt.wantHost || ru.Path != "/callback" || ru.Port() == "" {
				t.Errorf("redirect_uri: got %q, want http://%s:<port>/callback", ru, tt.wantHost)
			}

			// Only GET /callback is served; strays change nothing.
			base := "http://" + ru.Host
			for _, c := range []struct {
				method, path string
				want         int
			}{
				{http.MethodGet, "/favicon.ico", http.StatusNotFound},
				{http.MethodGet, "/", http.StatusNotFound},
				{http.MethodPost, "/callback", http.StatusMethodNotAllowed},
			} {
				req, _ := http.NewRequest(c.method, base+c.path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", c.method, c.path, err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Errorf("%s %s: got HTTP %d, want %d", c.method, c.path, resp.StatusCode, c.want)
				}
			}

			p := browse(t, authURL)
			out := wait(t, done)
			if out.err != nil {
				t.Fatalf("signInBrowser: %v", out.err)
			}
			if p.status != http.StatusOK {
				t.Errorf("page status: got %d, want 200", p.status)
			}
			if got, want := log.types(), []string{"open_url", "waiting"}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("events: got %q, want %q", got, want)
			}

			for _, want := range []string{"Signed in to", idptest.DefaultSubject, "You can close this tab and return to your terminal."} {
				if !strings.Contains(p.body, want) {
					t.Errorf("success page lacks %q", want)
				}
			}
			assertSelfContained(t, p.body)

			res := out.res
			if res.Kind != broker.KindOIDC {
				t.Errorf("Kind: got %q, want %q", res.Kind, broker.KindOIDC)
			}
			if res.Username != idptest.DefaultSubject {
				t.Errorf("Username: got %q, want %q", res.Username, idptest.DefaultSubject)
			}
			if res.Issuer != s.Issuer() || res.Server != s.URL {
				t.Errorf("Issuer, Server: got %q, %q, want %q, %q", res.Issuer, res.Server, s.Issuer(), s.URL)
			}
			if got := strings.Join(res.Scopes, " "); !strings.Contains(got, "offline_access") || !strings.Contains(got, "files") {
				t.Errorf("Scopes: got %q, want files and offline_access among them", got)
			}
			if res.Initial == nil || res.Initial.TokenType != "Bearer" || res.Initial.Expiry.Before(start.Add(4*time.Minute)) {
				t.Fatalf("Initial: got %v, want a Bearer token valid about 5 minutes", res.Initial)
			}
			if active, _, _ := s.Introspect(res.Initial.AccessToken.Reveal()); !active {
				t.Error("initial access token: got inactive at the server, want active")
			}
			if d := res.RefreshExpiry.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
				t.Errorf("RefreshExpiry: got %s after start, want about 1h (refresh_expires_in)", d)
			}
			// The refresh token is real: it refreshes at the server.
			if !s.RefreshTokenActive(res.Secret.Reveal()) {
				t.Error("refresh token: got inactive at the server, want active")
			}
			if _, err := s.Refresh(tt.clientID, res.Secret.Reveal()); err != nil {
				t.Errorf("refresh with the new refresh token: %v", err)
			}
			if s.RefreshTokenActive(res.Secret.Reveal()) {
				t.Error("refresh token: still active after rotation, want rotated (it was used)")
			}
			// The listener is gone.
			if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", ru.Port()), time.Second); err == nil {
				conn.Close()
				t.Error("loopback listener: still accepting after the sign-in, want closed")
			}
		})
	}
}

// assertSelfContained checks a page loads nothing from elsewhere and runs
// no script.
func assertSelfContained(t *testing.T, body string) {
	t.Helper()
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q, want a self-contained page", bad)
		}
	}
}

func TestSignInBrowserFailures(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(s *idptest.Server)
		wantErr    error
		wantIdP    string // IdPError code, if any
		wantStatus int
		wantPage   []string
	}{
		{name: "access denied", setup: func(s *idptest.Server) { s.DenyNext("") },
			wantErr: ErrSignInDenied, wantIdP: "access_denied", wantStatus: http.StatusForbidden,
			wantPage: []string{"Sign-in denied", "access_denied", "run the login again"}},
		{name: "other idp error", setup: func(s *idptest.Server) { s.DenyNext("temporarily_unavailable") },
			wantIdP: "temporarily_unavailable", wantStatus: http.StatusBadGateway,
			wantPage: []string{"temporarily_unavailable", "run the login again"}},
		{name: "iss mismatch", setup: func(s *idptest.Server) { s.SetIssParam("https://evil.example") },
			wantErr: ErrSignInState, wantStatus: http.StatusForbidden, wantPage: []string{"Sign-in refused", "nothing was kept"}},
		{name: "iss missing though announced", setup: func(s *idptest.Server) { s.SetIssParam("") },
			wantErr: ErrSignInState, wantStatus: http.StatusForbidden, wantPage: []string{"Sign-in refused"}},
		{name: "nonce missing", setup: func(s *idptest.Server) { s.SetNonceOverride("") },
			wantErr: ErrSignInState, wantStatus: http.StatusForbidden, wantPage: []string{"Sign-in refused"}},
		{name: "nonce mismatch", setup: func(s *idptest.Server) { s.SetNonceOverride("a-nonce-from-another-sign-in") },
			wantErr: ErrSignInState, wantStatus: http.StatusForbidden, wantPage: []string{"Sign-in refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{})
			tt.setup(s)
			log := newEventLog()
			authURL, done := startBrowser(t, context.Background(), browserRequest(t, s, log), log)
			p := browse(t, authURL)
			out := wait(t, done)
			checkErr(t, out.err, tt.wantErr, tt.wantIdP)
			if p.status != tt.wantStatus {
				t.Errorf("page status: got %d, want %d", p.status, tt.wantStatus)
			}
			for _, want := range tt.wantPage {
				if !strings.Contains(p.body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			assertSelfContained(t, p.body)
		})
	}
}

// checkErr checks err wraps want (when set) and carries an IdPError with
// code wantIdP (when set).
func checkErr(t *testing.T, err, want error, wantIdP string) {
	t.Helper()
	if err == nil {
		t.Fatal("got success, want an error")
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error: got %q, want it to wrap %q", err, want)
	}
	var idp *broker.IdPError
	switch {
	case wantIdP == "" && errors.As(err, &idp):
		t.Errorf("error: got IdP error %q, want none", idp.Code)
	case wantIdP != "" && !errors.As(err, &idp):
		t.Errorf("error: got %q, want an IdP error %q", err, wantIdP)
	case wantIdP != "" && idp.Code != wantIdP:
		t.Errorf("IdP error code: got %q, want %q", idp.Code, wantIdP)
	}
}

// TestSignInBrowserWrongState plays forged authorization responses, as
// any local process or a port-scanning web page can send them: a callback
// whose state is missing or not ours gets 400 and is ignored, up to
// maxForgedCallbacks of them; the real one still signs in.
func TestSignInBrowserWrongState(t *testing.T) {
	for _, query := range []string{"state=forged&code=abc", "code=abc", "state=forged&error=access_denied", ""} {
		t.Run(query, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{})
			log := newEventLog()
			authURL, done := startBrowser(t, context.Background(), browserRequest(t, s, log), log)
			ru := redirectURI(t, authURL)
			ru.RawQuery = query + "&iss=" + url.QueryEscape(s.Issuer())
			for i := range maxForgedCallbacks {
				p := browse(t, ru.String())
				if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Sign-in refused") {
					t.Fatalf("forged callback %d: got HTTP %d, want 400 with \"Sign-in refused\"", i+1, p.status)
				}
			}
			select {
			case out := <-done:
				t.Fatalf("the sign-in ended on forged callbacks: %v", out.err)
			default:
			}
			if got := s.Calls("authorization_code"); got != 0 {
				t.Errorf("code exchanges after forged callbacks: got %d, want 0", got)
			}
			if p := browse(t, authURL); p.status != http.StatusOK {
				t.Errorf("the real callback: got HTTP %d, want 200", p.status)
			}
			if out := wait(t, done); out.err != nil {
				t.Errorf("sign-in after %d forged callbacks: %v", maxForgedCallbacks, out.err)
			}
		})
	}
}

// TestSignInBrowserTooManyForged: one forged callback more than the
// bound ends the sign-in with ErrSignInState and a message that says
// what happened.
func TestSignInBrowserTooManyForged(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	log := newEventLog()
	authURL, done := startBrowser(t, context.Background(), browserRequest(t, s, log), log)
	ru := redirectURI(t, authURL)
	ru.RawQuery = "state=forged&code=abc"
	for range maxForgedCallbacks + 1 {
		browse(t, ru.String())
	}
	out := wait(t, done)
	checkErr(t, out.err, ErrSignInState, "")
	if out.err == nil || !strings.Contains(out.err.Error(), "stopped after 21 callbacks without this sign-in's state") {
		t.Errorf("error: got %v, want it to say it stopped after 21 forged callbacks", out.err)
	}
	if got := s.Calls("authorization_code"); got != 0 {
		t.Errorf("code exchanges: got %d, want 0", got)
	}
}

// TestSignInBrowserAbandoned: a browser that never comes back times out
// (ErrSignInTimeout), a cancelled context cancels; either way the
// listener is closed.
func TestSignInBrowserAbandoned(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
		wantErr error
	}{
		{name: "timeout", timeout: 300 * time.Millisecond, wantErr: ErrSignInTimeout},
		{name: "cancelled", timeout: time.Minute, cancel: true, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := idptest.New(t, idptest.Options{})
			log := newEventLog()
			r := browserRequest(t, s, log)
			r.Timeout = tt.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			authURL, done := startBrowser(t, ctx, r, log)
			if tt.cancel {
				cancel()
			}
			out := wait(t, done)
			checkErr(t, out.err, tt.wantErr, "")
			if tt.wantErr == ErrSignInTimeout && !strings.Contains(out.err.Error(), "run the login again") {
				t.Errorf("error: got %q, want it to say \"run the login again\"", out.err)
			}
			ru := redirectURI(t, authURL)
			for _, host := range []string{"127.0.0.1", "::1"} {
				if conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, ru.Port()), time.Second); err == nil {
					conn.Close()
					t.Errorf("listener on %s: still accepting after the sign-in ended, want closed", host)
				}
			}
		})
	}
}

// TestSignInBrowserNoRefreshToken: a token response without a refresh
// token is a failed sign-in, ErrNoRefreshToken, naming the client.
func TestSignInBrowserNoRefreshToken(t *testing.T) {
	s := idptest.New(t, idptest.Options{})
	// A token endpoint in front of the real one that drops refresh_token,
	// as an IdP does that does not allow offline access for the client.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, s.URL+"/token", r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		delete(body, "refresh_token")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		json.NewEncoder(w).Encode(body)
	}))
	defer proxy.Close()

	log := newEventLog()
	r := browserRequest(t, s, log)
	r.Metadata.TokenEndpoint = proxy.URL
	authURL, done := startBrowser(t, context.Background(), r, log)
	p := browse(t, authURL)
	out := wait(t, done)
	checkErr(t, out.err, ErrNoRefreshToken, "")
	if want := `allow offline access (offline_access) for client "ncagent"`; out.err != nil && !strings.Contains(out.err.Error(), want) {
		t.Errorf("error: got %q, want it to contain %q", out.err, want)
	}
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "offline_access") {
		t.Errorf("page: got HTTP %d, want 400 naming offline_access", p.status)
	}
}
