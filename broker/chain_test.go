package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
)

// TestShortLifetimeSharesOneRefresh: with 15-second access tokens the
// default 30 s early refresh would count every fresh token as expiring;
// capped at a quarter of the issued lifetime, a fresh token serves.
func TestShortLifetimeSharesOneRefresh(t *testing.T) {
	t.Run("16 concurrent identical requests", func(t *testing.T) {
		it := newIntegration(t, idptest.Options{AccessTokenLifespan: 15 * time.Second}, idptest.PublicClientID, nil)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 16 {
			wg.Go(func() {
				<-start
				if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := it.idp.Calls("refresh_token"); got != 1 {
			t.Errorf("got %d refresh calls, want 1", got)
		}
	})
	t.Run("20 sequential requests within 5s", func(t *testing.T) {
		it := newIntegration(t, idptest.Options{AccessTokenLifespan: 15 * time.Second}, idptest.PublicClientID, nil)
		begin := time.Now()
		for i := range 20 {
			if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work"}); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			time.Sleep(150 * time.Millisecond)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Fatalf("the requests took %s, want them within 5s", d)
		}
		if got := it.idp.Calls("refresh_token"); got != 1 {
			t.Errorf("got %d refresh calls, want 1", got)
		}
	})
	t.Run("early refresh still applies within a quarter", func(t *testing.T) {
		now := time.Now()
		e := newEntry("", nil, Token{AccessToken: "x", Expiry: now.Add(15 * time.Second)}, 30*time.Second, now)
		if e.early != 15*time.Second/4 {
			t.Errorf("got early %s, want %s", e.early, 15*time.Second/4)
		}
		e = newEntry("", nil, Token{AccessToken: "x", Expiry: now.Add(time.Hour)}, 30*time.Second, now)
		if e.early != 30*time.Second {
			t.Errorf("got early %s for a 1h token, want the configured 30s", e.early)
		}
	})
}

// TestSlowAnswerNoReuse: a provider that rotates at once but answers late.
// The caller gets its timeout; the refresh goes on detached, its rotated
// token is adopted, and the next refresh sends that one, never the
// consumed one (which would revoke the whole grant at idptest).
func TestSlowAnswerNoReuse(t *testing.T) {
	for _, tc := range []struct {
		name          string
		delay, caller time.Duration
		answer        time.Duration
		long          bool
	}{
		{"scaled", 3 * time.Second, 500 * time.Millisecond, 10 * time.Second, false},
		{"40s answer, default bounds", 40 * time.Second, callerWait, answerWait, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("takes 40s")
			}
			it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
			it.b.stop.callerWait, it.b.stop.answerWait = tc.caller, tc.answer
			it.idp.SetAnswerDelay(tc.delay)
			begin := time.Now()
			_, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}})
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want the caller's timeout (ErrUnavailable)", err)
			}
			if d := time.Since(begin); d > tc.caller+2*time.Second {
				t.Errorf("the caller waited %s, want about %s", d, tc.caller)
			}
			it.idp.SetAnswerDelay(0)
			// This request waits on the chain for the detached answer, then
			// refreshes with the rotated token.
			got, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"calendar"}})
			if err != nil {
				t.Fatalf("the chain did not continue: %v", err)
			}
			if active, _, _ := it.idp.Introspect(got.AccessToken.Reveal()); !active {
				t.Error("the token served is not active at the provider")
			}
			if !it.idp.RefreshTokenActive(it.memRefresh().Reveal()) {
				t.Error("the grant is gone: a consumed refresh token was sent")
			}
			if s, _ := it.store.get("work"); s != it.memRefresh() {
				t.Error("the store does not hold the newest refresh token")
			}
			if got := it.idp.Calls("refresh_token"); got != 2 {
				t.Errorf("got %d refresh calls, want 2 (nothing resent while the first was unanswered)", got)
			}
		})
	}
}

// TestShutdownWaitsForRefreshInFlight: Shutdown while refreshes are in
// flight (their callers gone) waits for each answer and stores what it
// rotated; a broker started afterwards on the same store keeps the chain.
func TestShutdownWaitsForRefreshInFlight(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	for i := range 20 {
		delay := time.Duration(rand.Int64N(int64(800 * time.Millisecond)))
		it.idp.SetAnswerDelay(delay)
		ctx, cancel := context.WithCancel(context.Background())
		b := New(Options{Store: it.store})
		if err := b.SetAccount(it.b.get("work").cfg); err != nil {
			t.Fatal(err)
		}
		runDone := make(chan struct{})
		go func() { b.Run(ctx); close(runDone) }()
		var wg sync.WaitGroup
		for _, sc := range []string{"files", "calendar", "contacts"} {
			wg.Go(func() { b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{sc}}) })
		}
		time.Sleep(time.Duration(rand.Int64N(int64(delay + 50*time.Millisecond))))
		b.Stop()
		cancel() // the callers and the scheduler go away
		if err := b.Shutdown(context.Background()); err != nil {
			t.Fatalf("round %d: shutdown: %v", i, err)
		}
		wg.Wait()
		<-runDone
		it.idp.SetAnswerDelay(0)
		s, _ := it.store.get("work")
		if !it.idp.RefreshTokenActive(s.Reveal()) {
			t.Fatalf("round %d (answer delay %s): the stored refresh token is dead: the grant was lost", i, delay)
		}
	}
	// The next start serves without a sign-in.
	b := New(Options{Store: it.store})
	if err := b.SetAccount(it.b.get("work").cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Fatalf("after the restarts: %v", err)
	}
}

// TestStopRefusesNewWork: after Stop nothing is sent; a cached token still
// serves.
func TestStopRefusesNewWork(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Fatal(err)
	}
	it.b.Stop()
	if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Errorf("a cached token after Stop: %v", err)
	}
	_, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"calendar"}})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want a refusal wrapping ErrUnavailable", err)
	}
	if got := it.idp.Calls("refresh_token"); got != 1 {
		t.Errorf("got %d refresh calls, want 1 (none after Stop)", got)
	}
	if st, _ := it.b.AccountStatus("work"); st.State != StateSignedIn {
		t.Errorf("got state %q after Stop, want signed-in", st.State)
	}
}

// memTimes is an in-memory ChainTimesStore.
type memTimes struct {
	mu sync.Mutex // guards m
	m  map[string]ChainTimes
}

func (m *memTimes) LoadChainTimes(account string) (ChainTimes, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.m[account]
	return t, ok
}

func (m *memTimes) SaveChainTimes(account string, t ChainTimes) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[account] = t
}

// TestStartDoesNotRefresh: a restarted broker whose chain times are known
// keeps the chain alive on schedule instead of refreshing at once; without
// them it refreshes at once (when the stored token was issued is unknown).
func TestStartDoesNotRefresh(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("times known=%v", known), func(t *testing.T) {
			it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
			times := &memTimes{m: map[string]ChainTimes{}}
			b := New(Options{Store: it.store, ChainTimes: times})
			cfg := it.b.get("work").cfg
			if err := b.SetAccount(cfg); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Token(context.Background(), TokenRequest{Account: "work"}); err != nil {
				t.Fatal(err)
			}
			saved, ok := times.LoadChainTimes("work")
			if s, _ := it.store.get("work"); !ok || saved.ID != ChainID(s) {
				t.Fatalf("got chain times %+v (saved %v), want those of the stored token", saved, ok)
			}
			if !known {
				times.m = map[string]ChainTimes{}
			}
			it.idp.ResetCalls()
			restarted := New(Options{Store: it.store, ChainTimes: times})
			if err := restarted.SetAccount(cfg); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { restarted.Run(ctx); close(done) }()
			time.Sleep(500 * time.Millisecond)
			cancel()
			<-done
			want := 0
			if !known {
				want = 1
			}
			if got := it.idp.Calls("refresh_token"); got != want {
				t.Errorf("got %d refreshes at start, want %d", got, want)
			}
			st, _ := restarted.AccountStatus("work")
			if st.State != StateSignedIn {
				t.Errorf("got state %q, want signed-in", st.State)
			}
		})
	}
}

// TestShutdownRetriesPendingWrite: a rotated refresh token only in memory
// at shutdown is written as soon as the store takes it, within the bound;
// when the store never does, Shutdown says so.
func TestShutdownRetriesPendingWrite(t *testing.T) {
	for _, opens := range []bool{true, false} {
		t.Run(fmt.Sprintf("store opens=%v", opens), func(t *testing.T) {
			it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
			it.store.failPuts(errStoreLocked)
			if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
				t.Fatal(err)
			}
			if st, _ := it.b.AccountStatus("work"); !st.Degraded {
				t.Fatal("got degraded false, want a pending write")
			}
			if opens {
				time.AfterFunc(700*time.Millisecond, func() { it.store.failPuts(nil) })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			begin := time.Now()
			err := it.b.Shutdown(ctx)
			took := time.Since(begin)
			s, _ := it.store.get("work")
			if opens {
				if err != nil || s != it.memRefresh() {
					t.Fatalf("got %v (store has the newest: %v), want the write done at shutdown", err, s == it.memRefresh())
				}
				if took > 1500*time.Millisecond {
					t.Errorf("the write landed %s after shutdown began, want soon after the store opened at 0.7s", took)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "not stored") {
				t.Errorf("got %v, want an error saying the rotated refresh token was not stored", err)
			}
			if took > 2500*time.Millisecond {
				t.Errorf("shutdown took %s, want it bounded by its 2s context", took)
			}
		})
	}
}

func TestPutBackoff(t *testing.T) {
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := putBackoff(i + 1); got != w {
			t.Errorf("after %d failures: got %s, want %s", i+1, got, w)
		}
	}
}
