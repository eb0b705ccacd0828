package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// chainRig is account "work" signed in at idptest (reuse detection
// revokes the whole grant) with its refresh token in the real Secret
// Service, and agents started and stopped on it as a user would.
type chainRig struct {
	idp     *idptest.Server
	kc      *Keychain
	cfgPath string
	times   string
	logs    *syncBuffer
	secrets []string
	store   SecretStore // when set, the agent's store instead of kc (a wrapper of kc)
	// stopWithin bounds a stop of an agent the rig started (default 10 s).
	stopWithin time.Duration
}

func newChainRig(t *testing.T) *chainRig {
	t.Helper()
	testutil.RequireSecretService(t)
	idp := idptest.New(t, idptest.Options{})
	service := "ncagent-chain-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	kc := NewKeychain(service, 5*time.Second)
	tok := idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files", "calendar", "contacts", "profile", "email", "talk", "mcp")
	if err := kc.Put("work", broker.Secret(tok.RefreshToken)); err != nil {
		t.Fatalf("keychain put: %v", err)
	}
	t.Cleanup(func() { kc.Delete("work") })
	dir := t.TempDir()
	cfg := &Config{Accounts: map[string]*AccountConfig{
		"work": {Kind: "oidc", Server: idp.Issuer(), Issuer: idp.Issuer(), ClientID: idptest.PublicClientID, Scopes: []string{"openid", "files"}},
	}}
	r := &chainRig{idp: idp, kc: kc, cfgPath: filepath.Join(dir, "config.toml"), times: filepath.Join(dir, "chain-times.json"), stopWithin: 10 * time.Second,
		logs: &syncBuffer{}, secrets: []string{tok.RefreshToken, tok.AccessToken}}
	if err := cfg.Save(r.cfgPath); err != nil {
		t.Fatalf("save config: %v", err)
	}
	t.Cleanup(func() {
		if s, _ := kc.Get("work"); s != "" {
			r.secrets = append(r.secrets, s.Reveal())
		}
		logs := r.logs.String()
		for i, s := range r.secrets {
			if s != "" && strings.Contains(logs, s) {
				t.Errorf("agent log holds secret #%d", i)
			}
		}
	})
	return r
}

// running is an agent of the rig serving on a socket; stop is its SIGTERM.
type running struct {
	client  *ipc.Client
	stopRun func() error
}

func (r *chainRig) start(t *testing.T) *running {
	t.Helper()
	var store SecretStore = r.kc
	if r.store != nil {
		store = r.store
	}
	a, err := New(Options{ConfigPath: r.cfgPath, Store: store, ChainTimesPath: r.times,
		Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	path := filepath.Join(testutil.ShortDir(t), "agent.sock")
	ln, err := ipc.Listen(path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	run := func(ctx context.Context) error { return a.Run(ctx, ln) }
	return &running{client: ipc.NewClient(path), stopRun: testutil.Serve(t, r.stopWithin, run)}
}

// stop is what SIGTERM does to `ncagent run`: it cancels Run's context and
// waits up to the rig's stopWithin for Run to return.
func (rn *running) stop(t *testing.T) {
	t.Helper()
	if err := rn.stopRun(); err != nil {
		t.Fatalf("agent: %v", err)
	}
}

// grantAlive fails the test when the refresh token in the keychain is no
// longer accepted by the provider.
func (r *chainRig) grantAlive(t *testing.T, what string) {
	t.Helper()
	s, err := r.kc.Get("work")
	if err != nil {
		t.Fatalf("%s: keychain get: %v", what, err)
	}
	r.secrets = append(r.secrets, s.Reveal())
	if !r.idp.RefreshTokenActive(s.Reveal()) {
		t.Fatalf("%s: the stored refresh token is dead: the grant was lost", what)
	}
}

var scopeSets = [][]string{{"files"}, {"calendar"}, {"contacts"}, {"profile"}, {"email"}, {"talk"}, {"mcp"},
	{"files", "calendar"}, {"files", "contacts"}, {"calendar", "contacts"}, {"files", "mcp"}, {"openid", "talk"}}

// TestStopWhileRefreshInFlight: SIGTERM at a random moment while refreshes
// (a caller's, and in every other round the keep-alive of a start that
// does not know when the stored token was refreshed) are in flight and the
// provider answers 0-800 ms late after rotating, 20 times: the grant survives every stop and the restarted agent serves
// without a sign-in.
func TestStopWhileRefreshInFlight(t *testing.T) {
	r := newChainRig(t)
	for i := range 20 {
		delay := time.Duration(rand.Int64N(int64(800 * time.Millisecond)))
		r.idp.SetAnswerDelay(delay)
		if i%2 == 0 {
			// When the stored token was refreshed is unknown: the agent
			// keeps the chain alive at once, a refresh with no caller.
			os.Remove(r.times)
		}
		rn := r.start(t)
		var wg sync.WaitGroup
		for _, sc := range scopeSets[i%len(scopeSets) : i%len(scopeSets)+1] {
			wg.Go(func() { rn.client.Token(context.Background(), ipc.TokenRequest{Account: "work", Scopes: sc}) })
		}
		time.Sleep(time.Duration(rand.Int64N(int64(delay + 100*time.Millisecond))))
		rn.stop(t)
		wg.Wait()
		r.grantAlive(t, fmt.Sprintf("stop %d (answer %s late)", i, delay.Round(time.Millisecond)))
	}
	r.idp.SetAnswerDelay(0)
	rn := r.start(t)
	if _, err := rn.client.Token(context.Background(), ipc.TokenRequest{Account: "work", Scopes: []string{"files", "talk"}}); err != nil {
		t.Fatalf("restarted agent: %v", err)
	}
	rn.stop(t)
	r.grantAlive(t, "after the restarts")
}

// TestStopWithRequestsQueuedPastGrace: 12 scope sets queued on the chain
// behind a provider answering 600 ms late (more than the server's 5 s
// shutdown grace in all), then SIGTERM: queued requests are refused at
// once, the refresh in flight is waited for, and the grant survives.
func TestStopWithRequestsQueuedPastGrace(t *testing.T) {
	r := newChainRig(t)
	r.idp.SetAnswerDelay(600 * time.Millisecond)
	rn := r.start(t)
	var wg sync.WaitGroup
	for _, sc := range scopeSets {
		wg.Go(func() { rn.client.Token(context.Background(), ipc.TokenRequest{Account: "work", Scopes: sc}) })
	}
	time.Sleep(time.Second)
	begin := time.Now()
	rn.stop(t)
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("the stop took %s: queued requests were not refused", d)
	}
	wg.Wait()
	r.grantAlive(t, "after the stop")
	r.idp.SetAnswerDelay(0)
	rn = r.start(t)
	if _, err := rn.client.Token(context.Background(), ipc.TokenRequest{Account: "work", Scopes: []string{"mcp"}}); err != nil {
		t.Fatalf("restarted agent: %v", err)
	}
	rn.stop(t)
}

// TestProviderKeepsFailing: 503 on every try is idp_unavailable with the
// last status in the message (CLI exit 5), not idp_error.
func TestProviderKeepsFailing(t *testing.T) {
	r := newChainRig(t)
	r.idp.Fault(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path != "/token" {
			return false
		}
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return true
	})
	rn := r.start(t)
	defer rn.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := rn.client.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: []string{"files"}})
	wantWireError(t, err, ipc.CodeIdPUnavailable, "HTTP 503")
}
