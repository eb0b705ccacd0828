package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/nctest"
	"github.com/ncagent/ncagent/internal/testutil"
)

// memStore is the broker's Store in memory.
type memStore struct {
	mu sync.Mutex // guards m
	m  map[string]broker.Secret
}

var _ broker.Store = (*memStore)(nil)

func (s *memStore) Get(a string) (broker.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[a]; ok {
		return v, nil
	}
	return "", broker.ErrNotFound
}

func (s *memStore) Put(a string, v broker.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[a] = v
	return nil
}

func (s *memStore) Delete(a string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, a)
	return nil
}

// upstreamLog records the Authorization of every request that reached the
// fake Nextcloud, and whether its Bearer was live when it arrived.
type upstreamLog struct {
	mu    sync.Mutex // guards below
	auths []string
	dead  int // Bearer tokens the IdP did not know as active on arrival
	dests []string
	// chunked counts requests whose body came with Transfer-Encoding: chunked.
	chunked int
}

// world is one test's IdP, Nextcloud, broker and running proxy.
type world struct {
	idp   *idptest.Server
	nc    *nctest.Server
	b     *broker.Broker
	p     *Proxy
	logs  *testutil.SyncBuffer
	up    *upstreamLog
	store *memStore
	srv   *url.URL // the account's server URL
}

type worldOptions struct {
	kind      broker.Kind // default OIDC
	lifespan  time.Duration
	ignoreScp bool   // Nextcloud oidc app: every refresh revokes the previous access token
	prefix    string // path prefix of the account's server URL
	davDir    string
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	if o.kind == "" {
		o.kind = broker.KindOIDC
	}
	if o.lifespan == 0 {
		o.lifespan = time.Hour
	}
	w := &world{logs: &testutil.SyncBuffer{}, up: &upstreamLog{}, store: &memStore{m: map[string]broker.Secret{}}}
	w.idp = idptest.New(t, idptest.Options{AccessTokenLifespan: o.lifespan, IgnoreScopeOnRefresh: o.ignoreScp})
	w.nc = nctest.New(t, nctest.Options{
		DAVDir: o.davDir,
		Bearer: func(tok string) (string, bool) {
			info := w.idp.Inspect(tok)
			return info.Subject, info.Active && info.Use == "access_token" && time.Now().Before(info.ExpiresAt)
		},
		OnRequest: func(r *http.Request) {
			auth := r.Header.Get("Authorization")
			dead := false
			if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
				info := w.idp.Inspect(tok)
				dead = !info.Active || !time.Now().Before(info.ExpiresAt)
			}
			w.up.mu.Lock()
			w.up.auths = append(w.up.auths, auth)
			if dead {
				w.up.dead++
			}
			if slices.Contains(r.TransferEncoding, "chunked") {
				w.up.chunked++
			}
			if d := r.Header.Get("Destination"); d != "" {
				w.up.dests = append(w.up.dests, d)
			}
			w.up.mu.Unlock()
		},
		LoginName: idptest.DefaultSubject,
	})
	logger := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.b = broker.New(broker.Options{Store: w.store, Logger: logger})
	acct := broker.Account{Name: "work", Kind: o.kind, Server: w.nc.URL + o.prefix, Username: idptest.DefaultSubject}
	if o.kind == broker.KindOIDC {
		acct.Issuer = w.idp.Issuer()
		acct.ClientID = idptest.PublicClientID
		acct.Scopes = []string{"openid", "files"}
		acct.EarlyRefresh = time.Second
		w.store.m["work"] = broker.Secret(w.idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files").RefreshToken)
	} else {
		pass := "app-" + newCredential()
		w.nc.AddAppPassword(pass)
		w.store.m["work"] = broker.Secret(pass)
	}
	w.srv, _ = url.Parse(acct.Server)
	if err := w.b.SetAccount(acct); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.b.Run(ctx)
	w.p = New(Options{Credentials: BrokerCredentials{Broker: w.b}, Logger: logger})
	ln, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, 10*time.Second, func(ctx context.Context) error { return w.p.Run(ctx, ln) })
	// Cleanups run last-registered first: Close stops Run, before the
	// cancel of Serve's cleanup.
	t.Cleanup(func() { w.p.Close() })
	for w.p.host() == "" {
		time.Sleep(time.Millisecond)
	}
	return w
}

// open opens a session of account work on the fake Nextcloud.
func (w *world) open(t testing.TB) *Session {
	t.Helper()
	s, err := w.p.Open(Spec{Account: "work", Scopes: []string{"files"}, PID: 1, Command: "test"},
		Upstream{Server: w.srv, Username: idptest.DefaultSubject})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// secrets returns every long-lived or upstream secret the test can know:
// the store's refresh token or app password, and every credential that
// reached the upstream.
func (w *world) secrets() []string {
	var out []string
	for _, v := range w.store.m {
		out = append(out, v.Reveal())
	}
	w.up.mu.Lock()
	defer w.up.mu.Unlock()
	for _, a := range w.up.auths {
		if _, v, ok := strings.Cut(a, " "); ok {
			out = append(out, v)
		}
	}
	return out
}
