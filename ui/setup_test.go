package ui

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// setupFixture is a running setup page and a client that follows no
// redirects and keeps no cookies on its own.
type setupFixture struct {
	srv    *SetupServer
	b      *fakeBackend
	base   string // http://127.0.0.1:port
	token  string
	logs   *syncBuffer
	client *http.Client
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = testutil.SyncBuffer

func startSetup(t *testing.T, b *fakeBackend, opts SetupOptions) *setupFixture {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := NewSetupServer(b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	raw, err := s.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse setup URL: %v", err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/" {
		t.Fatalf("setup URL: got scheme %q host %q path %q, want http://127.0.0.1:port/", u.Scheme, u.Hostname(), u.Path)
	}
	tok := u.Query().Get("token")
	if len(tok) < 40 {
		t.Fatalf("token: got %d characters, want at least 40", len(tok))
	}
	f := &setupFixture{srv: s, b: b, base: "http://" + u.Host, token: tok, logs: logs}
	f.client = &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       5 * time.Second,
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the one-time token appears in the logs")
		}
	})
	return f
}

// do sends a request with optional Host override and cookie.
func (f *setupFixture) do(t *testing.T, method, path, host, cookie string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if host != "" {
		req.Host = host
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// enter exchanges the token for a session cookie and returns it.
func (f *setupFixture) enter(t *testing.T) string {
	t.Helper()
	resp, _ := f.do(t, "GET", "/?token="+f.token, "", "", nil, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("token exchange: got status %d, want 303", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			return c.Value
		}
	}
	t.Fatalf("token exchange: no %s cookie", cookieName)
	return ""
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *setupFixture) csrf(t *testing.T, cookie string) string {
	t.Helper()
	resp, body := f.do(t, "GET", "/", "", cookie, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / with session: got status %d, want 200", resp.StatusCode)
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("form has no csrf field")
	}
	return m[1]
}

func TestSetupAccess(t *testing.T) {
	f := startSetup(t, newFakeBackend(), SetupOptions{})
	host := strings.TrimPrefix(f.base, "http://")
	port := host[strings.LastIndex(host, ":")+1:]

	refused := []struct {
		name, path, host, cookie string
	}{
		{"no token, no cookie", "/", "", ""},
		{"empty token", "/?token=", "", ""},
		{"wrong token", "/?token=" + strings.Repeat("A", 43), "", ""},
		{"right token, rebinding host", "/?token=" + f.token, "attacker.example:" + port, ""},
		{"right token, localhost by name", "/?token=" + f.token, "localhost:" + port, ""},
		{"right token, other port", "/?token=" + f.token, "127.0.0.1:1", ""},
		{"made-up cookie", "/", "", "made-up"},
		{"progress without session", "/progress?id=1", "", ""},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, "GET", tt.path, tt.host, tt.cookie, nil, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("got status %d, want 403", resp.StatusCode)
			}
			if !strings.Contains(body, "Add account…") {
				t.Errorf("403 page does not say how to get a new link")
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("403 set a cookie")
			}
		})
	}

	// The token survived the refused attempts and works once.
	resp, _ := f.do(t, "GET", "/?token="+f.token, "", "", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("right token: got status %d location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, rc := range resp.Cookies() {
		if rc.Name == cookieName {
			c = rc
		}
	}
	if c == nil {
		t.Fatal("right token: no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Value == f.token {
		t.Errorf("cookie: got HttpOnly %v SameSite %v (value is token: %v), want HttpOnly, Strict, a new value", c.HttpOnly, c.SameSite, c.Value == f.token)
	}

	t.Run("reused token", func(t *testing.T) {
		resp, _ := f.do(t, "GET", "/?token="+f.token, "", "", nil, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("cookie opens the form", func(t *testing.T) {
		resp, body := f.do(t, "GET", "/", "", c.Value, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got status %d, want 200", resp.StatusCode)
		}
		for _, want := range []string{`name="server"`, `name="issuer"`, `name="client_id"`, `name="method"`, `name="redirect_host"`, `name="csrf"`} {
			if !strings.Contains(body, want) {
				t.Errorf("form lacks %s", want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP: got %q, want default-src 'none' and frame-ancestors 'none'", csp)
		}
	})
	t.Run("cookie with rebinding host", func(t *testing.T) {
		resp, _ := f.do(t, "GET", "/", "evil.example:"+port, c.Value, nil, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("second link works once", func(t *testing.T) {
		link, err := f.srv.Link()
		if err != nil {
			t.Fatalf("Link: %v", err)
		}
		u, _ := url.Parse(link)
		tok := u.Query().Get("token")
		if tok == f.token {
			t.Fatal("Link reused the first token")
		}
		for i, want := range []int{http.StatusSeeOther, http.StatusForbidden} {
			resp, _ := f.do(t, "GET", "/?token="+tok, "", "", nil, nil)
			if resp.StatusCode != want {
				t.Errorf("use %d: got status %d, want %d", i+1, resp.StatusCode, want)
			}
		}
		if strings.Contains(f.logs.String(), tok) {
			t.Errorf("the second token appears in the logs")
		}
	})
}

func validForm(csrf string) url.Values {
	return url.Values{
		"csrf":      {csrf},
		"account":   {"work"},
		"server":    {"https://cloud.example.com"},
		"issuer":    {"https://id.example.com/realms/main"},
		"client_id": {"ncagent"},
		"method":    {"browser"},
	}
}

func TestSetupCSRF(t *testing.T) {
	f := startSetup(t, newFakeBackend(), SetupOptions{})
	cookie := f.enter(t)
	csrf := f.csrf(t, cookie)
	host := strings.TrimPrefix(f.base, "http://")

	refused := []struct {
		name   string
		form   url.Values
		cookie string
		hdr    map[string]string
	}{
		{"no csrf", func() url.Values { v := validForm(csrf); v.Del("csrf"); return v }(), cookie, nil},
		{"wrong csrf", validForm(strings.Repeat("x", len(csrf))), cookie, nil},
		{"no cookie", validForm(csrf), "", nil},
		{"cross-origin", validForm(csrf), cookie, map[string]string{"Origin": "http://evil.example"}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := f.do(t, "POST", "/login", "", tt.cookie, tt.form, tt.hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("got status %d, want 403", resp.StatusCode)
			}
		})
	}
	if logins, _ := f.b.calls(); len(logins) != 0 {
		t.Fatalf("refused posts reached Login %d times, want 0", len(logins))
	}

	resp, _ := f.do(t, "POST", "/login", "", cookie, validForm(csrf), map[string]string{"Origin": "http://" + host})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/progress?id=1" {
		t.Fatalf("valid post: got status %d location %q, want 303 to /progress?id=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitFor(t, "Login called", func() bool { l, _ := f.b.calls(); return len(l) == 1 })
	logins, _ := f.b.calls()
	want := ipc.LoginRequest{Account: "work", Server: "https://cloud.example.com", Issuer: "https://id.example.com/realms/main",
		ClientID: "ncagent", Method: "browser", OpenBrowser: true}
	if got := logins[0]; got.Account != want.Account || got.Server != want.Server || got.Issuer != want.Issuer ||
		got.ClientID != want.ClientID || got.Method != want.Method || got.OpenBrowser != want.OpenBrowser {
		t.Errorf("Login request: got %+v, want %+v", got, want)
	}
}

func TestSetupForm(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(url.Values)
		status  int
		want    ipc.LoginRequest // when accepted
		errText string           // when refused
	}{
		{"auto method is empty", func(v url.Values) { v.Set("method", "auto"); v.Del("issuer"); v.Del("client_id") }, 303,
			ipc.LoginRequest{Account: "work", Server: "https://cloud.example.com", OpenBrowser: true}, ""},
		{"app password", func(v url.Values) { v.Set("method", "app-password") }, 303,
			ipc.LoginRequest{Account: "work", Server: "https://cloud.example.com", Issuer: "https://id.example.com/realms/main", ClientID: "ncagent", Method: "app-password", OpenBrowser: true}, ""},
		{"name from server", func(v url.Values) { v.Set("account", ""); v.Set("server", "https://Cloud.Example.com/nc") }, 303,
			ipc.LoginRequest{Account: "cloud", Server: "https://Cloud.Example.com/nc", Issuer: "https://id.example.com/realms/main", ClientID: "ncagent", Method: "browser", OpenBrowser: true}, ""},
		{"server missing", func(v url.Values) { v.Del("server") }, 400, ipc.LoginRequest{}, "server address: give the full address"},
		{"server not a URL", func(v url.Values) { v.Set("server", "cloud.example.com") }, 400, ipc.LoginRequest{}, "give the full address"},
		{"server with password", func(v url.Values) { v.Set("server", "https://bob:pw@cloud.example.com") }, 400, ipc.LoginRequest{}, "leave user name and password out"},
		{"bad issuer", func(v url.Values) { v.Set("issuer", "ftp://id.example.com") }, 400, ipc.LoginRequest{}, "issuer:"},
		{"bad name", func(v url.Values) { v.Set("account", "../etc") }, 400, ipc.LoginRequest{}, "account name:"},
		{"bad method", func(v url.Values) { v.Set("method", "device") }, 400, ipc.LoginRequest{}, "method:"},
		{"redirect host", func(v url.Values) { v.Set("redirect_host", "127.0.0.1") }, 303,
			ipc.LoginRequest{Account: "work", Server: "https://cloud.example.com", Issuer: "https://id.example.com/realms/main", ClientID: "ncagent", Method: "browser", OpenBrowser: true, RedirectHost: "127.0.0.1"}, ""},
		{"bad redirect host", func(v url.Values) { v.Set("redirect_host", "0.0.0.0") }, 400, ipc.LoginRequest{}, "redirect host:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startSetup(t, newFakeBackend(), SetupOptions{})
			cookie := f.enter(t)
			form := validForm(f.csrf(t, cookie))
			tt.edit(form)
			resp, body := f.do(t, "POST", "/login", "", cookie, form, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 303 {
				if !strings.Contains(body, tt.errText) {
					t.Errorf("page does not say %q", tt.errText)
				}
				if l, _ := f.b.calls(); len(l) != 0 {
					t.Errorf("refused form reached Login")
				}
				return
			}
			waitFor(t, "Login called", func() bool { l, _ := f.b.calls(); return len(l) == 1 })
			logins, _ := f.b.calls()
			if got := logins[0]; got.Account != tt.want.Account || got.Server != tt.want.Server || got.Issuer != tt.want.Issuer ||
				got.ClientID != tt.want.ClientID || got.Method != tt.want.Method || got.OpenBrowser != tt.want.OpenBrowser || got.RedirectHost != tt.want.RedirectHost {
				t.Errorf("Login request: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSetupProgress walks a sign-in: the progress page shows the URL to
// open, then the result; the page stops after showing success.
func TestSetupProgress(t *testing.T) {
	b := newFakeBackend()
	release := make(chan error)
	b.loginFn = func(ctx context.Context, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
		progress(ipc.LoginEvent{Type: "method", Method: "browser", Reason: "the server offers OpenID Connect"})
		progress(ipc.LoginEvent{Type: "open_url", URL: "https://cloud.example.com/apps/oidc/authorize?client_id=ncagent&state=xyz"})
		if err := <-release; err != nil {
			return ipc.LoginEvent{}, err
		}
		return ipc.LoginEvent{Type: "done", Account: req.Account, User: "alice", Message: "signed in to https://cloud.example.com as alice"}, nil
	}
	f := startSetup(t, b, SetupOptions{DoneGrace: 50 * time.Millisecond})
	cookie := f.enter(t)
	resp, _ := f.do(t, "POST", "/login", "", cookie, validForm(f.csrf(t, cookie)), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("post: got status %d, want 303", resp.StatusCode)
	}
	waitFor(t, "progress shows the URL", func() bool {
		_, body := f.do(t, "GET", "/progress?id=1", "", cookie, nil, nil)
		return strings.Contains(body, `href="https://cloud.example.com/apps/oidc/authorize?client_id=ncagent&amp;state=xyz"`)
	})
	_, body := f.do(t, "GET", "/progress?id=1", "", cookie, nil, nil)
	for _, want := range []string{`http-equiv="refresh"`, "OpenID Connect in the browser", "the server offers OpenID Connect"} {
		if !strings.Contains(body, want) {
			t.Errorf("progress page lacks %q", want)
		}
	}
	if resp, _ := f.do(t, "GET", "/progress?id=2", "", cookie, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown attempt: got status %d, want 404", resp.StatusCode)
	}

	release <- nil
	waitFor(t, "success shown", func() bool {
		_, body := f.do(t, "GET", "/progress?id=1", "", cookie, nil, nil)
		return strings.Contains(body, "Signed in to https://cloud.example.com as alice")
	})
	select {
	case <-f.srv.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the page did not stop after showing success")
	}
}

func TestSetupFailureSaysWhatNext(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&ipc.Error{Code: ipc.CodeTimeout, Message: "sign-in timed out"}, "not finished in time"},
		{&ipc.Error{Code: ipc.CodeIdPUnavailable, Message: "cannot reach https://cloud.example.com"}, "Check the address"},
		{&ipc.Error{Code: ipc.CodeIdPError, Message: "access_denied"}, "refused the sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			b := newFakeBackend()
			b.loginFn = func(context.Context, ipc.LoginRequest, func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
				return ipc.LoginEvent{}, tt.err
			}
			f := startSetup(t, b, SetupOptions{})
			cookie := f.enter(t)
			f.do(t, "POST", "/login", "", cookie, validForm(f.csrf(t, cookie)), nil)
			waitFor(t, "failure shown", func() bool {
				_, body := f.do(t, "GET", "/progress?id=1", "", cookie, nil, nil)
				return strings.Contains(body, sentence(tt.err.(*ipc.Error).Message)) && strings.Contains(body, tt.want)
			})
			_, body := f.do(t, "GET", "/?retry=1", "", cookie, nil, nil)
			if !strings.Contains(body, `value="https://cloud.example.com"`) {
				t.Errorf("try again does not keep the server address")
			}
			select {
			case <-f.srv.Done():
				t.Errorf("the page stopped after a failure; want it to stay for another try")
			default:
			}
		})
	}
}

func TestSetupIdle(t *testing.T) {
	f := startSetup(t, newFakeBackend(), SetupOptions{IdleTimeout: 100 * time.Millisecond})
	select {
	case <-f.srv.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the page did not stop when idle")
	}
	if _, err := f.srv.Link(); err == nil {
		t.Errorf("Link after stop: got no error, want one")
	}
}

func TestSetupIdleWaitsForSignIn(t *testing.T) {
	b := newFakeBackend()
	release := make(chan struct{})
	b.loginFn = func(ctx context.Context, req ipc.LoginRequest, _ func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
		<-release
		return ipc.LoginEvent{}, &ipc.Error{Code: ipc.CodeTimeout, Message: "sign-in timed out"}
	}
	f := startSetup(t, b, SetupOptions{IdleTimeout: 150 * time.Millisecond})
	cookie := f.enter(t)
	f.do(t, "POST", "/login", "", cookie, validForm(f.csrf(t, cookie)), nil)
	select {
	case <-f.srv.Done():
		t.Fatal("the page stopped while a sign-in ran")
	case <-time.After(400 * time.Millisecond):
	}
	close(release)
	select {
	case <-f.srv.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("the page did not stop when idle after the sign-in ended")
	}
}

// waitFor is testutil.WaitFor for up to waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, waitTimeout, what, cond)
}

// TestSetupLinkRedeemedAndExpiry: a link reports its redemption (so that
// its trampoline page goes), and an unused link stops working after
// LinkTTL.
func TestSetupLinkRedeemedAndExpiry(t *testing.T) {
	var mu sync.Mutex
	var redeemed []string
	f := startSetup(t, newFakeBackend(), SetupOptions{LinkTTL: 300 * time.Millisecond, Redeemed: func(link string) {
		mu.Lock()
		redeemed = append(redeemed, link)
		mu.Unlock()
	}})
	f.enter(t)
	mu.Lock()
	got := redeemed
	mu.Unlock()
	if want := f.base + "/?token=" + f.token; len(got) != 1 || got[0] != want {
		t.Errorf("redeemed: got %d links, want exactly the one entered", len(got))
	}

	link, err := f.srv.Link()
	if err != nil {
		t.Fatalf("Link: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	u, _ := url.Parse(link)
	resp, _ := f.do(t, "GET", "/?"+u.RawQuery, "", "", nil, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired link: got status %d, want 403", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "expired token") {
		t.Errorf("expired link: refusal not logged")
	}
}

// TestSetupLoginPanic: a sign-in that panics shows as failed, the panic is
// logged without its value, and the page keeps serving.
func TestSetupLoginPanic(t *testing.T) {
	b := newFakeBackend()
	b.loginFn = func(context.Context, ipc.LoginRequest, func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
		panic("app-password-Qx81 leaked")
	}
	f := startSetup(t, b, SetupOptions{})
	cookie := f.enter(t)
	f.do(t, "POST", "/login", "", cookie, validForm(f.csrf(t, cookie)), nil)
	waitFor(t, "failure shown", func() bool {
		_, body := f.do(t, "GET", "/progress?id=1", "", cookie, nil, nil)
		return strings.Contains(body, "internal error")
	})
	if resp, _ := f.do(t, "GET", "/", "", cookie, nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("form after the panic: got status %d, want 200", resp.StatusCode)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "recovered from a panic") || strings.Contains(logs, "app-password-Qx81") {
		t.Errorf("log: want the recovered panic without its value:\n%s", logs)
	}
}
