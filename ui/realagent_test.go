package ui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// waitTimeout bounds every wait for a condition in these tests: generous,
// since they run under -race on small, busy machines.
const waitTimeout = 20 * time.Second

// childEnv names the test a child process of the test binary runs; see
// inOwnProcess.
const childEnv = "NCAGENT_UI_TEST_CHILD"

// inOwnProcess runs the calling test alone in a new process of the test
// binary and reports its outcome there, unless this process is that child.
// systray is a process-wide singleton that cannot start twice, so each
// test that starts the tray needs a process of its own, also under
// -count=N. The parent returns true and must return at once; the child
// gets false and runs the test.
func inOwnProcess(t *testing.T) (parent bool) {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if testing.Verbose() || err != nil {
		t.Logf("%s in its own process:\n%s", t.Name(), out)
	}
	switch {
	case err != nil:
		t.Fatalf("%s in its own process: %v", t.Name(), err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()+" "):
		t.Skip("skipped in its own process")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()+" "):
		t.Fatalf("%s in its own process: no PASS line", t.Name())
	}
	return true
}

// testAccount is an OIDC account of the fixture, signed in at idp as
// idptest.DefaultSubject before the agent starts.
type testAccount struct {
	name string
	idp  *idptest.Server
}

// agentFixture is the real agent on a real socket, with its secrets in
// the real Secret Service and its accounts at in-process authorization
// servers. URLs the agent asks the browser to open arrive on opened.
type agentFixture struct {
	a       *agent.Agent // nil until startAgent
	service string       // the keychain's service name
	kc      *agent.Keychain
	names   map[string]bool // accounts to delete from the keychain at cleanup
	socket  string
	client  *ipc.Client
	cfgPath string
	logs    *syncBuffer // the agent's and the tray's logs
	log     *slog.Logger
	opened  chan string

	mu      sync.Mutex // guards secrets
	secrets []string   // every credential the test saw, to look for in the logs
}

// newAccounts provisions accounts for an agent: a keychain under a service
// name of its own with each account's refresh token, and a config file
// (user alice). It deletes the keychain entries and checks the logs for
// secrets at cleanup.
func newAccounts(t *testing.T, accounts ...testAccount) *agentFixture {
	t.Helper()
	testutil.RequireSecretService(t)
	f := &agentFixture{logs: &syncBuffer{}, opened: make(chan string, 8), service: "ncagent-ui-" + randomHex(6)}
	f.log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.kc = agent.NewKeychain(f.service, 10*time.Second)
	f.names = map[string]bool{}
	t.Cleanup(func() {
		if f.a != nil {
			if st, err := f.a.Status(context.Background()); err == nil {
				for _, as := range st.Accounts {
					f.names[as.Name] = true
				}
			}
		}
		for name := range f.names {
			if err := f.kc.Delete(name); err != nil && !errors.Is(err, broker.ErrNotFound) {
				t.Errorf("keychain cleanup %s: %v", name, err)
			}
		}
		f.checkLogs(t)
	})

	cfg := &agent.Config{Accounts: map[string]*agent.AccountConfig{}}
	for _, ac := range accounts {
		tok := ac.idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files")
		f.secret(tok.RefreshToken, tok.AccessToken, tok.IDToken)
		f.names[ac.name] = true
		if err := f.kc.Put(ac.name, broker.Secret(tok.RefreshToken)); err != nil {
			t.Fatalf("keychain put %s: %v", ac.name, err)
		}
		cfg.Accounts[ac.name] = &agent.AccountConfig{Kind: "oidc", Server: ac.idp.Issuer(), Issuer: ac.idp.Issuer(),
			ClientID: idptest.PublicClientID, User: idptest.DefaultSubject, Scopes: []string{"openid", "files"}}
	}
	f.cfgPath = filepath.Join(t.TempDir(), "config.toml")
	if len(accounts) > 0 {
		if err := cfg.Save(f.cfgPath); err != nil {
			t.Fatalf("save config: %v", err)
		}
	}
	sockDir := testutil.ShortDir(t)
	f.socket = filepath.Join(sockDir, "agent.sock")
	f.client = ipc.NewClient(f.socket)
	return f
}

// startAgent provisions accounts (see newAccounts) and runs the agent in
// this process until the test ends.
func startAgent(t *testing.T, accounts ...testAccount) *agentFixture {
	t.Helper()
	f := newAccounts(t, accounts...)
	var err error
	f.a, err = agent.New(agent.Options{
		ConfigPath: f.cfgPath,
		Store:      f.kc,
		Logger:     f.log,
		Socket:     f.socket,
		OpenURL: func(u string) error {
			select {
			case f.opened <- u:
				return nil
			default:
				return errors.New("test browser: too many URLs not yet opened")
			}
		},
		SignInTimeout: time.Minute,
	})
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	ln, err := ipc.Listen(f.socket)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	// Cleanups run last-registered first: Close after Run returned.
	t.Cleanup(func() { f.a.Close() })
	testutil.Serve(t, waitTimeout, func(ctx context.Context) error { return f.a.Run(ctx, ln) })
	return f
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// secret remembers credentials the test saw, to look for in the logs.
func (f *agentFixture) secret(s ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range s {
		if v != "" {
			f.secrets = append(f.secrets, v)
		}
	}
}

// checkLogs fails when a credential the test saw appears in the logs.
func (f *agentFixture) checkLogs(t *testing.T) {
	t.Helper()
	logs := f.logs.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the logs hold secret #%d the test saw", i)
		}
	}
}

// status returns an account's status as the agent reports it.
func (f *agentFixture) status(t *testing.T, name string) ipc.AccountStatus {
	t.Helper()
	st, err := f.a.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, as := range st.Accounts {
		if as.Name == name {
			return as
		}
	}
	t.Fatalf("status: no account %q", name)
	return ipc.AccountStatus{}
}

// waitState waits until the agent reports the account in state.
func (f *agentFixture) waitState(t *testing.T, name, state string) ipc.AccountStatus {
	t.Helper()
	var last ipc.AccountStatus
	waitFor(t, fmt.Sprintf("%s %s in agent status", name, state), func() bool {
		last = f.status(t, name)
		return last.State == state
	})
	return last
}

// token fetches a token over the socket, as any client would.
func (f *agentFixture) token(req ipc.TokenRequest) (ipc.TokenResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tok, err := f.client.Token(ctx, req)
	f.secret(tok.AccessToken, strings.TrimPrefix(tok.Authorization, "Bearer "))
	return tok, err
}

// storedSecret reads the account's refresh token from the keychain.
func (f *agentFixture) storedSecret(t *testing.T, name string) string {
	t.Helper()
	s, err := f.kc.Get(name)
	if err != nil {
		t.Fatalf("keychain get %s: %v", name, err)
	}
	f.secret(s.Reveal())
	return s.Reveal()
}

// nextOpened waits for the agent to ask the browser to open a URL.
func (f *agentFixture) nextOpened(t *testing.T) string {
	t.Helper()
	select {
	case u := <-f.opened:
		return u
	case <-time.After(waitTimeout):
		t.Fatalf("the agent opened no URL within %v; agent log:\n%s", waitTimeout, f.logs.String())
	}
	return ""
}

// browse plays the user's browser for a sign-in: it GETs the
// authorization URL and follows every redirect, from the authorization
// server to the agent's loopback callback, and returns the last page.
func browse(t *testing.T, authURL string) (status int, last *url.URL, body string) {
	t.Helper()
	c := &http.Client{Timeout: waitTimeout}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("browser: read page: %v", err)
	}
	return resp.StatusCode, resp.Request.URL, string(b)
}

// revokeAtIdP revokes a refresh token, and with it its whole grant, at the
// authorization server as the public client (RFC 7009 section 2.1,
// https://www.rfc-editor.org/rfc/rfc7009#section-2.1), the way a user
// revoking the app's access in the IdP's account page would.
func revokeAtIdP(t *testing.T, idp *idptest.Server, refresh string) {
	t.Helper()
	form := url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}, "client_id": {idptest.PublicClientID}}
	resp, err := idp.Client().PostForm(idp.Issuer()+"/revoke", form)
	if err != nil {
		t.Fatalf("revoke at the IdP: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke at the IdP: got status %d, want 200", resp.StatusCode)
	}
	if idp.RefreshTokenActive(refresh) {
		t.Fatal("revoke at the IdP: the refresh token is still active")
	}
}
