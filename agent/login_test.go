package agent

// Sign-ins through the agent: a real socket, the ipc client, the real
// Secret Service, and the in-process authorization server, a fake Nextcloud
// (internal/nctest) or an httptest device authorization server. The flows
// themselves are unit-tested in signin_*_test.go; these tests prove what
// the agent adds: one sign-in per account, the config and the keychain
// written only after success, and an account that keeps working when a
// sign-in over it fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/nctest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// loginWait bounds every wait in these tests: generous, for loaded machines.
const loginWait = 30 * time.Second

// loginRig is a running agent for sign-in tests.
type loginRig struct {
	idp     *idptest.Server
	kc      *Keychain
	agent   *Agent
	client  *ipc.Client
	cfgPath string
	logs    *syncBuffer

	mu      sync.Mutex // guards secrets
	secrets []string   // every secret the test met, to look for in the logs
}

type loginRigOptions struct {
	signInTimeout time.Duration
	// work provisions account "work": oidc at the rig's IdP, signed in,
	// without keep-alive refreshes. Its first token request rotates the
	// refresh token (see settle).
	work bool
	// idp configures the rig's identity provider (a provider profile).
	idp idptest.Options
}

// startLoginRig starts an agent on a fresh socket, config and keychain
// service. At cleanup it stops the agent and fails the test when its log
// holds any secret the test met or the keychain holds.
func startLoginRig(t *testing.T, opts loginRigOptions) *loginRig {
	t.Helper()
	testutil.RequireSecretService(t)
	r := &loginRig{
		idp:  idptest.New(t, opts.idp),
		logs: &syncBuffer{},
	}
	service := "ncagent-login-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r.kc = NewKeychain(service, 5*time.Second)
	t.Cleanup(func() {
		for _, a := range []string{"work", "dev", "cloud"} {
			r.kc.Delete(a)
		}
	})
	cfg := &Config{Accounts: map[string]*AccountConfig{}}
	if opts.work {
		tok := r.idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files")
		r.remember(tok.RefreshToken, tok.AccessToken, tok.IDToken)
		if err := r.kc.Put("work", broker.Secret(tok.RefreshToken)); err != nil {
			t.Fatalf("keychain put: %v", err)
		}
		cfg.Accounts["work"] = &AccountConfig{Kind: "oidc", Server: r.idp.Issuer(), Issuer: r.idp.Issuer(),
			ClientID: idptest.PublicClientID, Scopes: []string{"openid", "files"}, User: idptest.DefaultSubject,
			// No keep-alive refresh: tests compare refresh tokens.
			KeepAlive: "off"}
		r.idp.ResetCalls()
	}
	r.cfgPath = filepath.Join(t.TempDir(), "config.toml")
	if err := cfg.Save(r.cfgPath); err != nil {
		t.Fatalf("save config: %v", err)
	}
	socket := filepath.Join(testutil.ShortDir(t), "agent.sock")
	var err error
	r.agent, err = New(Options{
		ConfigPath:    r.cfgPath,
		Store:         r.kc,
		Logger:        slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Socket:        socket,
		SignInTimeout: opts.signInTimeout,
		OpenURL: func(string) error {
			t.Errorf("the agent opened a browser for a client that did not ask it to")
			return nil
		},
	})
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	// Cleanups run last-registered first: the agent stops before the
	// logs are checked.
	t.Cleanup(func() { r.checkLogs(t) })
	r.client = serveAgent(t, r.agent, socket)
	return r
}

// serveAgent runs a on a new socket at path until the test ends, and
// returns a client of it. At cleanup it stops the agent and fails the test
// when Run fails or does not return within loginWait.
func serveAgent(t testing.TB, a *Agent, path string) *ipc.Client {
	t.Helper()
	ln, err := ipc.Listen(path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	testutil.Serve(t, loginWait, func(ctx context.Context) error { return a.Run(ctx, ln) })
	return ipc.NewClient(path)
}

func (r *loginRig) remember(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
}

// secret returns the keychain's secret for account ("" when none) and
// remembers it.
func (r *loginRig) secret(t *testing.T, account string) string {
	t.Helper()
	s, err := r.kc.Get(account)
	if errors.Is(err, broker.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("keychain get %s: %v", account, err)
	}
	r.remember(s.Reveal())
	return s.Reveal()
}

func (r *loginRig) checkLogs(t *testing.T) {
	t.Helper()
	for _, a := range []string{"work", "dev", "cloud"} {
		r.secret(t, a)
	}
	logs := r.logs.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.secrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			t.Errorf("agent log holds secret #%d", i)
		}
	}
}

// settle asks for account's default token once, so that the refresh
// chain has rotated to the refresh token the keychain holds from now on
// (later requests hit the cache), and returns that refresh token.
func (r *loginRig) settle(t *testing.T, account string) string {
	t.Helper()
	r.tokenWorks(t, account)
	return r.secret(t, account)
}

// config returns the bytes of the config file and of its state file (the
// one sign-in writes), either of which may be missing.
func (r *loginRig) config(t *testing.T) []byte {
	t.Helper()
	statePath, err := StatePathFor(r.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{r.cfgPath, statePath} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("read config: %v", err)
		}
		all = append(append(all, b...), 0)
	}
	return all
}

// state returns account's state in the agent's status, "" when absent.
func (r *loginRig) state(t *testing.T, account string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, a := range st.Accounts {
		if a.Name == account {
			return a.State
		}
	}
	return ""
}

// tokenWorks asks the agent for account's token and checks the IdP says it
// is active.
func (r *loginRig) tokenWorks(t *testing.T, account string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	tok, err := r.client.Token(ctx, ipc.TokenRequest{Account: account})
	if err != nil {
		t.Fatalf("token %s: %v", account, err)
	}
	r.remember(tok.AccessToken)
	if active, _, _ := r.idp.Introspect(tok.AccessToken); !active {
		t.Fatalf("token %s: the IdP says it is not active", account)
	}
}

// pageSeen is what the user's browser showed at the end of a sign-in.
type pageSeen struct {
	status int
	title  string
	err    error
}

// browserFunc plays the user's browser for a URL the sign-in asks to open.
type browserFunc func(url string) pageSeen

// loginResult is one sign-in through the ipc client.
type loginResult struct {
	final  ipc.LoginEvent
	err    error
	events []ipc.LoginEvent // progress, in order
	page   *pageSeen        // nil when no browser ran
}

// login runs a sign-in through the ipc client. On "open_url" it runs
// browser (when not nil) in its own goroutine, as a user would.
func (r *loginRig) login(ctx context.Context, req ipc.LoginRequest, browser browserFunc) loginResult {
	var res loginResult
	pages := make(chan pageSeen, 1)
	started := false
	res.final, res.err = r.client.Login(ctx, req, func(ev ipc.LoginEvent) {
		res.events = append(res.events, ev)
		if ev.Type == "open_url" && browser != nil && !started {
			started = true
			go func() { pages <- browser(ev.URL) }()
		}
	})
	if started {
		select {
		case p := <-pages:
			res.page = &p
		case <-time.After(loginWait):
			res.page = &pageSeen{err: errors.New("the browser did not finish")}
		}
	}
	return res
}

func (res loginResult) types() []string {
	var out []string
	for _, ev := range res.events {
		out = append(out, ev.Type)
	}
	return out
}

var loginPageTitle = regexp.MustCompile(`(?is)<title>(.*?)</title>`)

// visit GETs u with client and reports the page it ends on.
func visit(client *http.Client, u string) pageSeen {
	resp, err := client.Get(u)
	if err != nil {
		return pageSeen{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := pageSeen{status: resp.StatusCode}
	if m := loginPageTitle.FindSubmatch(body); m != nil {
		p.title = strings.TrimSuffix(html.UnescapeString(string(m[1])), " · ncagent")
	}
	return p
}

// authorizeThen returns a browser that asks the authorization server
// (which approves at once) without following its redirect back, lets edit
// change the authorization response (nil: leave it), and then follows it
// to the agent's loopback listener.
func authorizeThen(edit func(q url.Values)) browserFunc {
	return func(authURL string) pageSeen {
		c := &http.Client{
			Timeout:       loginWait,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		resp, err := c.Get(authURL)
		if err != nil {
			return pageSeen{err: err}
		}
		resp.Body.Close()
		back, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			return pageSeen{err: fmt.Errorf("authorization server answered HTTP %d, location error %v", resp.StatusCode, err)}
		}
		if edit != nil {
			q := back.Query()
			edit(q)
			back.RawQuery = q.Encode()
		}
		return visit(&http.Client{Timeout: loginWait}, back.String())
	}
}

// wantWireError checks err is an *ipc.Error with code (any when empty)
// whose message contains every one of parts.
func wantWireError(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	var we *ipc.Error
	if !errors.As(err, &we) {
		t.Fatalf("got error %v, want a wire error %q", err, code)
	}
	if code != "" && we.Code != code {
		t.Errorf("error code: got %q (%s), want %q", we.Code, we.Message, code)
	}
	for _, p := range parts {
		if !strings.Contains(we.Message, p) {
			t.Errorf("error message: got %q, want it to contain %q", we.Message, p)
		}
	}
}

func TestLoginBrowserThroughAgent(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()

	res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(),
		ClientID: idptest.PublicClientID, Scopes: ipc.Scopes{"files"}}, authorizeThen(nil))
	if res.err != nil {
		t.Fatalf("login: %v", res.err)
	}
	if got, want := res.types(), []string{"open_url", "waiting"}; !slices.Equal(got, want) {
		t.Errorf("progress events: got %q, want %q", got, want)
	}
	if res.page == nil || res.page.err != nil || res.page.status != http.StatusOK || res.page.title != "Signed in" {
		t.Errorf("browser page: got %+v, want 200 %q", res.page, "Signed in")
	}
	f := res.final
	if f.Type != "done" || f.State != "signed-in" || f.User != idptest.DefaultSubject || f.Method != MethodBrowser {
		t.Errorf("result: got type %q state %q user %q method %q, want done signed-in %q browser", f.Type, f.State, f.User, f.Method, idptest.DefaultSubject)
	}
	if got := r.idp.Authorizations(); got != 1 {
		t.Errorf("authorization requests: got %d, want 1", got)
	}

	// The keychain holds a live refresh token; the config names the
	// account and holds no secret.
	secret := r.secret(t, "dev")
	if !r.idp.RefreshTokenActive(secret) {
		t.Fatalf("the keychain does not hold a live refresh token for dev")
	}
	cfg, _, err := LoadMerged(r.cfgPath)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	ac := cfg.Accounts["dev"]
	if ac == nil || ac.Kind != "oidc" || ac.Issuer != r.idp.Issuer() || ac.ClientID != idptest.PublicClientID || ac.User != idptest.DefaultSubject {
		t.Fatalf("config account dev: got %+v, want oidc at %s, client %s, user %s", ac, r.idp.Issuer(), idptest.PublicClientID, idptest.DefaultSubject)
	}
	if bytes.Contains(r.config(t), []byte(secret)) {
		t.Errorf("the config file holds the refresh token")
	}
	if got := r.state(t, "dev"); got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	tok, err := r.client.Token(ctx, ipc.TokenRequest{Account: "dev", Scopes: ipc.Scopes{"files"}})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	r.remember(tok.AccessToken)
	// The sign-in's own token serves the first request: no refresh right
	// after the code exchange.
	if active, scopes, _ := r.idp.Introspect(tok.AccessToken); !active || !slices.Contains(scopes, "files") {
		t.Errorf("token: got active %v scopes %q, want active with files", active, scopes)
	}
	if got := r.idp.Calls("refresh_token"); got != 0 {
		t.Errorf("got %d refreshes after the sign-in, want 0", got)
	}
}

// TestLoginFailedReloginKeepsAccount signs account "work" in again with
// authorization responses that must be refused. Each time nothing may
// change: the keychain keeps the old refresh token, the config file keeps
// its bytes, and the account keeps serving tokens.
func TestLoginFailedReloginKeepsAccount(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{work: true})
	oldSecret := r.settle(t, "work")
	oldConfig := r.config(t)

	cases := []struct {
		name      string
		setup     func()
		edit      func(url.Values)
		exchanged bool // whether the code reaches the token endpoint
		title     string
		message   []string
	}{
		// A wrong or missing state is ignored (400) and the sign-in keeps
		// waiting for the real callback: TestSignInBrowserWrongState.
		{name: "iss mismatch", setup: func() { r.idp.SetIssParam("https://evil.example") },
			title: "Sign-in refused", message: []string{`comes from issuer "https://evil.example"`}},
		{name: "iss missing although announced", setup: func() { r.idp.SetIssParam("") },
			title: "Sign-in refused", message: []string{"carries no iss"}},
		{name: "nonce mismatch", setup: func() { r.idp.SetNonceOverride("forged-nonce-0123456789") }, exchanged: true,
			title: "Sign-in refused", message: []string{"nonce", "possible attack"}},
		{name: "nonce missing", setup: func() { r.idp.SetNonceOverride("") }, exchanged: true,
			title: "Sign-in refused", message: []string{"nonce", "possible attack"}},
		{name: "access denied", setup: func() { r.idp.DenyNext("") },
			title: "Sign-in denied", message: []string{"sign-in was denied", "access_denied", "run ncagent login work again and allow access"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.idp.ResetIssParam()
			r.idp.ResetNonce()
			if tc.setup != nil {
				tc.setup()
			}
			t.Cleanup(func() { r.idp.ResetIssParam(); r.idp.ResetNonce() })
			exchanges := r.idp.Calls("authorization_code")
			ctx, cancel := context.WithTimeout(context.Background(), loginWait)
			defer cancel()

			res := r.login(ctx, ipc.LoginRequest{Account: "work"}, authorizeThen(tc.edit))
			wantWireError(t, res.err, ipc.CodeIdPError, tc.message...)
			if res.page == nil || res.page.err != nil || res.page.status != http.StatusForbidden || res.page.title != tc.title {
				t.Errorf("browser page: got %+v, want 403 %q", res.page, tc.title)
			}
			if got := r.idp.Calls("authorization_code") - exchanges; got != map[bool]int{false: 0, true: 1}[tc.exchanged] {
				t.Errorf("code exchanges: got %d, want exchanged=%v", got, tc.exchanged)
			}
			if r.secret(t, "work") != oldSecret {
				t.Errorf("the keychain secret of work changed after a failed sign-in")
			}
			if !bytes.Equal(r.config(t), oldConfig) {
				t.Errorf("the config changed after a failed sign-in")
			}
			if got := r.state(t, "work"); got != "signed-in" {
				t.Errorf("state: got %q, want signed-in", got)
			}
			r.tokenWorks(t, "work")
		})
	}
}

// TestLoginBrowserNeverComesBack: a sign-in nobody finishes ends at the
// timeout with a clear error, closes its loopback listener and changes
// nothing.
func TestLoginBrowserNeverComesBack(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{work: true, signInTimeout: 2 * time.Second})
	oldSecret := r.settle(t, "work")
	oldConfig := r.config(t)
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()

	res := r.login(ctx, ipc.LoginRequest{Account: "work"}, nil)
	wantWireError(t, res.err, ipc.CodeTimeout, "did not come back to http://127.0.0.1:", "/callback within 2s", "--redirect-host localhost", "run the login again")
	var authURL string
	for _, ev := range res.events {
		if ev.Type == "open_url" {
			authURL = ev.URL
		}
	}
	u, err := url.Parse(authURL)
	if err != nil || authURL == "" {
		t.Fatalf("no authorization URL in the events %q", res.types())
	}
	redirect, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil || redirect.Port() == "" {
		t.Fatalf("bad redirect_uri in the authorization URL: %v", err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", redirect.Port()), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the loopback listener on port %s is still open after the sign-in ended", redirect.Port())
	}
	if r.secret(t, "work") != oldSecret || !bytes.Equal(r.config(t), oldConfig) {
		t.Errorf("the keychain or the config changed after an abandoned sign-in")
	}
	if got := r.state(t, "work"); got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	r.tokenWorks(t, "work")
	if got := r.idp.Calls("authorization_code"); got != 0 {
		t.Errorf("code exchanges: got %d, want 0", got)
	}
}

// TestLoginReplacesSecretOnlyAfterSuccess signs "work" in again: while the
// new sign-in waits for the browser the old secret stays and works; after
// it the keychain holds the new chain's refresh token.
func TestLoginReplacesSecretOnlyAfterSuccess(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{work: true})
	oldSecret := r.settle(t, "work")
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()

	// What the agent looks like while the user is still in the browser;
	// written by the browser goroutine, read after login returned.
	var during struct {
		secret    broker.Secret
		secretErr error
		status    ipc.StatusResponse
		statusErr error
		tokErr    error
	}
	browser := func(authURL string) pageSeen {
		during.secret, during.secretErr = r.kc.Get("work")
		during.status, during.statusErr = r.client.Status(ctx)
		tok, err := r.client.Token(ctx, ipc.TokenRequest{Account: "work"})
		during.tokErr = err
		r.remember(tok.AccessToken)
		return authorizeThen(nil)(authURL)
	}
	res := r.login(ctx, ipc.LoginRequest{Account: "work"}, browser)
	if res.err != nil {
		t.Fatalf("login: %v", res.err)
	}
	if during.secretErr != nil || during.secret.Reveal() != oldSecret {
		t.Errorf("during the sign-in the keychain did not hold the old secret (error %v)", during.secretErr)
	}
	if during.tokErr != nil {
		t.Errorf("during the sign-in the account served no token: %v", during.tokErr)
	}
	if during.statusErr != nil || len(during.status.Accounts) != 1 || during.status.Accounts[0].State != "signing-in" {
		t.Errorf("status during the sign-in: got %+v (error %v), want work signing-in", during.status.Accounts, during.statusErr)
	}
	newSecret := r.secret(t, "work")
	if newSecret == oldSecret || !r.idp.RefreshTokenActive(newSecret) {
		t.Errorf("after the sign-in the keychain does not hold the new chain's live refresh token")
	}
	if got := r.state(t, "work"); got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	r.tokenWorks(t, "work")
}

// TestLoginJoinsSignInInProgress: a second request for the same account
// joins the first: it is told so first, sees the same URL, and both get
// the result of one authorization.
func TestLoginJoinsSignInInProgress(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	req := ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(), ClientID: idptest.PublicClientID}

	joined := make(chan struct{})
	first := make(chan loginResult, 1)
	go func() {
		first <- r.login(ctx, req, func(authURL string) pageSeen {
			// The user takes their time, until the second request joined.
			select {
			case <-joined:
			case <-ctx.Done():
				return pageSeen{err: ctx.Err()}
			}
			return authorizeThen(nil)(authURL)
		})
	}()
	if err := waitUntil(func() bool { return strings.Contains(r.logs.String(), "sign-in started") }); err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	second := make(chan loginResult, 1)
	go func() { second <- r.login(ctx, req, nil) }()
	if err := waitUntil(func() bool { return strings.Contains(r.logs.String(), "sign-in joined") }); err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	close(joined)

	a, b := <-first, <-second
	if a.err != nil || b.err != nil {
		t.Fatalf("logins: got errors %v and %v, want none", a.err, b.err)
	}
	if a.final.User != idptest.DefaultSubject || b.final.User != idptest.DefaultSubject {
		t.Errorf("results: got users %q and %q, want %q twice", a.final.User, b.final.User, idptest.DefaultSubject)
	}
	if got := b.types(); len(got) < 2 || got[0] != EventJoined || got[1] != "open_url" {
		t.Errorf("second request's events: got %q, want %q first, then the replayed open_url", got, EventJoined)
	}
	urlOf := func(res loginResult) string {
		for _, ev := range res.events {
			if ev.Type == "open_url" {
				return ev.URL
			}
		}
		return ""
	}
	if urlOf(a) == "" || urlOf(a) != urlOf(b) {
		t.Errorf("the two requests were shown different URLs")
	}
	if got := r.idp.Authorizations(); got != 1 {
		t.Errorf("authorization requests: got %d, want 1", got)
	}
	if got := r.idp.Calls("authorization_code"); got != 1 {
		t.Errorf("code exchanges: got %d, want 1", got)
	}
}

// TestLoginAbandonedThenAgain: when the only requester goes away (the user
// pressed Ctrl-C) the agent ends the sign-in and closes its loopback
// listener; the next login starts a new sign-in that works.
func TestLoginAbandonedThenAgain(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	req := ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(), ClientID: idptest.PublicClientID}

	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	var authURL string
	first := r.login(ctx, req, func(u string) pageSeen {
		authURL = u
		cancel()
		return pageSeen{}
	})
	if !errors.Is(first.err, context.Canceled) {
		t.Fatalf("abandoned login: got %v, want context.Canceled", first.err)
	}
	if err := waitUntil(func() bool { return strings.Contains(r.logs.String(), "sign-in failed") }); err != nil {
		t.Fatalf("the agent did not end the abandoned sign-in: %v", err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatalf("authorization URL: %v", err)
	}
	redirect, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil || redirect.Port() == "" {
		t.Fatalf("bad redirect_uri in the authorization URL: %v", err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", redirect.Port()), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the loopback listener of the abandoned sign-in is still open")
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), loginWait)
	defer cancel2()
	second := r.login(ctx2, req, authorizeThen(nil))
	if second.err != nil {
		t.Fatalf("login after an abandoned one: %v", second.err)
	}
	if slices.Contains(second.types(), EventJoined) {
		t.Errorf("the new login joined the abandoned one: events %q", second.types())
	}
	if got := r.state(t, "dev"); got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	if got := r.idp.Authorizations(); got != 1 {
		t.Errorf("authorization requests: got %d, want 1 (the abandoned sign-in never reached the server)", got)
	}
}

// waitUntil polls cond until it holds or loginWait passed.
func waitUntil(cond func() bool) error {
	deadline := time.Now().Add(loginWait)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %s", loginWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// deviceServer is an OAuth 2.0 device authorization server
// (https://www.rfc-editor.org/rfc/rfc8628) answering token polls from a
// script: each entry is an error code ("authorization_pending",
// "slow_down", "expired_token", ...) or "ok" for the tokens. It has no ID
// tokens; the user comes from its userinfo endpoint.
type deviceServer struct {
	*httptest.Server
	access, refresh string // issued by the device flow

	mu       sync.Mutex // guards the fields below
	script   []string
	polls    []string        // what each device code poll was answered
	codes    []string        // device_code of each poll
	live     map[string]bool // access tokens issued, by the flow or a refresh
	refreshT string          // the current refresh token
}

func newDeviceServer(t *testing.T, script ...string) *deviceServer {
	d := &deviceServer{script: script, access: "device-access-" + randomString(16), refresh: "device-refresh-" + randomString(16)}
	d.live = map[string]bool{d.access: true}
	d.refreshT = d.refresh
	d.Server = httptest.NewServer(d)
	t.Cleanup(d.Close)
	return d
}

func (d *deviceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	send := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		send(http.StatusOK, map[string]any{
			"issuer":                        d.URL,
			"authorization_endpoint":        d.URL + "/authorize",
			"token_endpoint":                d.URL + "/token",
			"device_authorization_endpoint": d.URL + "/device",
			"userinfo_endpoint":             d.URL + "/userinfo",
			"grant_types_supported":         []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		})
	case "/device":
		if r.PostFormValue("client_id") != idptest.PublicClientID {
			send(http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		send(http.StatusOK, map[string]any{
			"device_code":      "device-code-0123456789",
			"user_code":        "WDJB-MJHT",
			"verification_uri": d.URL + "/activate",
			"expires_in":       600,
			"interval":         1,
		})
	case "/token":
		if r.PostFormValue("grant_type") == "refresh_token" {
			// A rotating refresh grant, for the agent's later tokens.
			d.mu.Lock()
			ok := r.PostFormValue("refresh_token") == d.refreshT
			access := "device-access-" + randomString(16)
			if ok {
				d.refreshT = "device-refresh-" + randomString(16)
				d.live[access] = true
			}
			refresh := d.refreshT
			d.mu.Unlock()
			if !ok {
				send(http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
				return
			}
			send(http.StatusOK, map[string]any{"access_token": access, "refresh_token": refresh,
				"token_type": "Bearer", "expires_in": 300, "scope": "openid offline_access"})
			return
		}
		d.mu.Lock()
		next := "authorization_pending"
		if len(d.script) > 0 {
			next, d.script = d.script[0], d.script[1:]
		}
		d.polls = append(d.polls, next)
		d.codes = append(d.codes, r.PostFormValue("device_code"))
		d.mu.Unlock()
		if r.PostFormValue("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" {
			send(http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
			return
		}
		if next != "ok" {
			send(http.StatusBadRequest, map[string]string{"error": next})
			return
		}
		send(http.StatusOK, map[string]any{"access_token": d.access, "refresh_token": d.refresh,
			"token_type": "Bearer", "expires_in": 300, "scope": "openid offline_access"})
	case "/userinfo":
		if r.Header.Get("Authorization") != "Bearer "+d.access {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		send(http.StatusOK, map[string]string{"sub": "bob", "preferred_username": "bob", "name": "Bob"})
	default:
		http.NotFound(w, r)
	}
}

// issued reports whether access is an access token the server issued.
func (d *deviceServer) issued(access string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live[access]
}

func (d *deviceServer) answered() ([]string, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.polls), slices.Clone(d.codes)
}

func TestLoginDeviceThroughAgent(t *testing.T) {
	t.Run("pending, slow down, then success", func(t *testing.T) {
		r := startLoginRig(t, loginRigOptions{})
		d := newDeviceServer(t, "authorization_pending", "slow_down", "ok")
		r.remember(d.access, d.refresh, "device-code-0123456789")
		ctx, cancel := context.WithTimeout(context.Background(), loginWait)
		defer cancel()

		res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodDevice, Server: d.URL, ClientID: idptest.PublicClientID}, nil)
		if res.err != nil {
			t.Fatalf("login: %v", res.err)
		}
		if got, want := res.types(), []string{"user_code", "waiting"}; !slices.Equal(got, want) {
			t.Errorf("progress events: got %q, want %q", got, want)
		}
		if ev := res.events[0]; ev.UserCode != "WDJB-MJHT" || ev.URL != d.URL+"/activate" {
			t.Errorf("user_code event: got code %q url %q, want %q %q", ev.UserCode, ev.URL, "WDJB-MJHT", d.URL+"/activate")
		}
		if res.final.User != "bob" || res.final.Method != MethodDevice {
			t.Errorf("result: got user %q method %q, want bob device", res.final.User, res.final.Method)
		}
		polls, codes := d.answered()
		if want := []string{"authorization_pending", "slow_down", "ok"}; !slices.Equal(polls, want) {
			t.Errorf("token polls: got %q, want %q", polls, want)
		}
		for _, c := range codes {
			if c != "device-code-0123456789" {
				t.Errorf("a poll carried another device code")
			}
		}
		if got := r.secret(t, "dev"); got != d.refresh {
			t.Errorf("the keychain does not hold the device flow's refresh token")
		}
		cfg, _, err := LoadMerged(r.cfgPath)
		if err != nil {
			t.Fatalf("load config: %v", err)
		}
		if ac := cfg.Accounts["dev"]; ac == nil || ac.Kind != "oidc" || ac.Issuer != d.URL || ac.User != "bob" {
			t.Errorf("config account dev: got %+v, want oidc at %s, user bob", ac, d.URL)
		}
		// The agent serves tokens of the new chain.
		tok, err := r.client.Token(ctx, ipc.TokenRequest{Account: "dev"})
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		r.remember(tok.AccessToken, r.secret(t, "dev"))
		if !d.issued(tok.AccessToken) {
			t.Errorf("token: not an access token the device server issued")
		}
	})

	t.Run("expires", func(t *testing.T) {
		r := startLoginRig(t, loginRigOptions{})
		d := newDeviceServer(t, "authorization_pending", "expired_token")
		oldConfig := r.config(t)
		ctx, cancel := context.WithTimeout(context.Background(), loginWait)
		defer cancel()

		res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodDevice, Server: d.URL, ClientID: idptest.PublicClientID}, nil)
		wantWireError(t, res.err, ipc.CodeTimeout, "expired")
		if polls, _ := d.answered(); len(polls) != 2 {
			t.Errorf("token polls: got %q, want 2 (pending, expired)", polls)
		}
		if r.secret(t, "dev") != "" || !bytes.Equal(r.config(t), oldConfig) {
			t.Errorf("an expired device sign-in left a secret or changed the config")
		}
		if got := r.state(t, "dev"); got != "" {
			t.Errorf("state: got %q, want no account dev", got)
		}
	})
}

func TestLoginAppPasswordThroughAgent(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	nc := nctest.New(t, nctest.Options{DisplayName: "Alice L."})
	grant := func(loginURL string) pageSeen {
		if err := nc.Grant(loginURL); err != nil {
			return pageSeen{err: err}
		}
		return pageSeen{status: http.StatusOK, title: "granted"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()

	res := r.login(ctx, ipc.LoginRequest{Account: "cloud", Method: MethodAppPassword, Server: nc.URL}, grant)
	r.remember(nc.AppPasswords()...)
	if res.err != nil {
		t.Fatalf("login: %v", res.err)
	}
	if res.page == nil || res.page.err != nil {
		t.Fatalf("granting access: %+v", res.page)
	}
	if res.final.User != nctest.DefaultLoginName || !strings.Contains(res.final.Message, "Alice L.") {
		t.Errorf("result: got user %q message %q, want %q and the display name", res.final.User, res.final.Message, nctest.DefaultLoginName)
	}
	if ua := nc.UserAgents(); len(ua) != 1 || !strings.HasPrefix(ua[0], "ncagent (") {
		t.Errorf("login flow User-Agent: got %q, want ncagent (<host>)", ua)
	}
	first := r.secret(t, "cloud")
	if !nc.Valid(first) {
		t.Fatalf("the keychain does not hold a valid app password")
	}
	cfg, _, err := LoadMerged(r.cfgPath)
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	if ac := cfg.Accounts["cloud"]; ac == nil || ac.Kind != "app-password" || ac.Server != nc.URL || ac.User != nctest.DefaultLoginName || ac.DisplayName != "Alice L." {
		t.Errorf("config account cloud: got %+v", ac)
	}
	tok, err := r.client.Token(ctx, ipc.TokenRequest{Account: "cloud"})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	if tok.TokenType != "Basic" || tok.Username != nctest.DefaultLoginName {
		t.Errorf("token: got type %q user %q, want Basic %q", tok.TokenType, tok.Username, nctest.DefaultLoginName)
	}
	oldConfig := r.config(t)

	// Signing in again, but the server refuses the new password when it
	// is checked: the old password stays and keeps working.
	nc.FailVerifications(1)
	res = r.login(ctx, ipc.LoginRequest{Account: "cloud"}, grant)
	r.remember(nc.AppPasswords()...)
	wantWireError(t, res.err, ipc.CodeIdPError, "answered HTTP 401, so nothing was kept")
	if got := r.secret(t, "cloud"); got != first {
		t.Errorf("the keychain secret changed after a refused sign-in")
	}
	if !bytes.Equal(r.config(t), oldConfig) {
		t.Errorf("the config changed after a refused sign-in")
	}
	if got := r.state(t, "cloud"); got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	tok2, err := r.client.Token(ctx, ipc.TokenRequest{Account: "cloud"})
	if err != nil || tok2.Authorization != tok.Authorization {
		t.Errorf("after a refused sign-in the account does not serve its old credentials (error %v)", err)
	}
	if got := len(nc.AppPasswords()); got != 2 {
		t.Errorf("app passwords issued: got %d, want 2", got)
	}
}

// TestLoginAppPasswordFlowExpires: the user opens the login page only after
// the server's login flow expired: granting fails there, the poll never
// succeeds, and the agent ends the sign-in at its timeout with nothing kept.
func TestLoginAppPasswordFlowExpires(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{signInTimeout: 3 * time.Second})
	var clockMu sync.Mutex
	now := time.Now()
	nc := nctest.New(t, nctest.Options{FlowLifetime: time.Minute, Now: func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return now
	}})
	late := func(loginURL string) pageSeen {
		clockMu.Lock()
		now = now.Add(2 * time.Minute)
		clockMu.Unlock()
		err := nc.Grant(loginURL)
		return pageSeen{err: err}
	}
	oldConfig := r.config(t)
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()

	res := r.login(ctx, ipc.LoginRequest{Account: "cloud", Method: MethodAppPassword, Server: nc.URL}, late)
	if res.page == nil || res.page.err == nil {
		t.Errorf("granting an expired login flow: got no error")
	}
	wantWireError(t, res.err, ipc.CodeTimeout, "not granted within 3s")
	if got := nc.Calls(nctest.EndpointPoll); got == 0 {
		t.Errorf("the agent never polled")
	}
	if len(nc.AppPasswords()) != 0 || r.secret(t, "cloud") != "" || !bytes.Equal(r.config(t), oldConfig) {
		t.Errorf("an expired login flow left an app password, a secret or a config change")
	}
}
