//go:build unix

package ipc

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// secretToken is what the fake backend hands out; tests grep logs for it.
const secretToken = "tok-SECRET-5f1c2a9e"

// subjectSecret is a subject token clients send; it must not reach logs.
const subjectSecret = "subj-SECRET-77d0e1"

var fixedExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeBackend is a hand-written Backend. Hooks left nil take defaults.
type fakeBackend struct {
	status   func(ctx context.Context) (StatusResponse, error)
	token    func(ctx context.Context, p Peer, r TokenRequest) (TokenResponse, error)
	exchange func(ctx context.Context, p Peer, r ExchangeRequest) (TokenResponse, error)
	login    func(ctx context.Context, p Peer, r LoginRequest, progress func(LoginEvent)) (LoginEvent, error)
	revoke   func(ctx context.Context, p Peer, r RevokeRequest) (RevokeResponse, error)

	mu    sync.Mutex // guards calls and peers
	calls int
	peers []Peer
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) record(p Peer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.peers = append(f.peers, p)
}

func (f *fakeBackend) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeBackend) LastPeer() Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.peers) == 0 {
		return Peer{UID: -1}
	}
	return f.peers[len(f.peers)-1]
}

func (f *fakeBackend) Status(ctx context.Context) (StatusResponse, error) {
	f.record(Peer{})
	if f.status != nil {
		return f.status(ctx)
	}
	return StatusResponse{Version: "test", PID: os.Getpid(), Accounts: []AccountStatus{{Name: "work", Kind: "oidc", State: "signed-in"}}}, nil
}

// unknownAccount is what the default hooks answer for account "nope".
func unknownAccount(name string) error {
	return &Error{Code: CodeUnknownAccount, Message: "no such account", Account: name}
}

func (f *fakeBackend) Token(ctx context.Context, p Peer, r TokenRequest) (TokenResponse, error) {
	f.record(p)
	if f.token != nil {
		return f.token(ctx, p, r)
	}
	return fakeToken(r.Account, r.Scopes)
}

func fakeToken(account string, scopes Scopes) (TokenResponse, error) {
	switch account {
	case "nope":
		return TokenResponse{}, unknownAccount(account)
	case "boom":
		return TokenResponse{}, errors.New("backend exploded")
	case "":
		account = "work"
	}
	return TokenResponse{
		Account: account, TokenType: "Bearer", AccessToken: secretToken,
		Authorization: "Bearer " + secretToken, ExpiresAt: fixedExpiry, ExpiresIn: 300,
		Scope: strings.Join(scopes, " "), Server: "https://cloud.example",
	}, nil
}

func (f *fakeBackend) Exchange(ctx context.Context, p Peer, r ExchangeRequest) (TokenResponse, error) {
	f.record(p)
	if f.exchange != nil {
		return f.exchange(ctx, p, r)
	}
	resp, err := fakeToken(r.Account, r.Scopes)
	resp.IssuedTokenType = "urn:ietf:params:oauth:token-type:access_token"
	return resp, err
}

func (f *fakeBackend) Login(ctx context.Context, p Peer, r LoginRequest, progress func(LoginEvent)) (LoginEvent, error) {
	f.record(p)
	if f.login != nil {
		return f.login(ctx, p, r, progress)
	}
	if r.Account == "nope" {
		return LoginEvent{}, unknownAccount(r.Account)
	}
	progress(LoginEvent{Type: "method", Method: "browser", Reason: "default"})
	progress(LoginEvent{Type: "open_url", URL: "https://cloud.example/authorize"})
	progress(LoginEvent{Type: "waiting"})
	return LoginEvent{Method: "browser", State: "signed-in", User: "alice"}, nil
}

func (f *fakeBackend) Revoke(ctx context.Context, p Peer, r RevokeRequest) (RevokeResponse, error) {
	f.record(p)
	if f.revoke != nil {
		return f.revoke(ctx, p, r)
	}
	if r.Account == "nope" {
		return RevokeResponse{}, unknownAccount(r.Account)
	}
	return RevokeResponse{Account: r.Account, Where: "idp", ServerRevoked: true, SecretDeleted: true, PurgedTokens: 2}, nil
}

// shortDir and eventually are the shared helpers under the names the
// tests of this package use.
var shortDir = testutil.ShortDir

func eventually(cond func() bool) bool { return testutil.Eventually(2*time.Second, cond) }

var syscallECONNRESET = syscall.ECONNRESET

// testServer is a Server running on a real socket with a fake backend.
type testServer struct {
	path    string
	srv     *Server
	b       *fakeBackend
	logs    *testutil.SyncBuffer
	stopRun func() error // testutil.Serve's stop of Run
	// returned receives Run's error when it returns, for tests that stop
	// the server otherwise than by its context.
	returned chan error
}

// startServer listens on a fresh socket and runs a Server until cleanup.
func startServer(t testing.TB, b *fakeBackend, opts ServerOptions, configure ...func(*Server)) *testServer {
	t.Helper()
	if b == nil {
		b = &fakeBackend{}
	}
	path := filepath.Join(shortDir(t), "ncagent", "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	logs := &testutil.SyncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts.Socket = path
	ts := &testServer{path: path, srv: NewServer(b, opts), b: b, logs: logs, returned: make(chan error, 1)}
	for _, f := range configure {
		f(ts.srv)
	}
	// Cleanups run last-registered first: the logs are read after Run
	// returned.
	t.Cleanup(func() {
		for _, secret := range []string{secretToken, subjectSecret} {
			if logs := ts.logs.String(); strings.Contains(logs, secret) {
				t.Errorf("logs carry a secret:\n%s", logs)
			}
		}
	})
	ts.stopRun = testutil.Serve(t, 10*time.Second, func(ctx context.Context) error {
		err := ts.srv.Run(ctx, ln)
		ts.returned <- err
		return err
	})
	return ts
}

// stop cancels Run and waits for it.
func (ts *testServer) stop(t testing.TB) {
	t.Helper()
	if err := ts.stopRun(); err != nil {
		t.Fatal(err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
