package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// discoveryServer serves a discovery document whose issuer is its own URL
// unless issuerOverride is set.
type discoveryServer struct {
	*httptest.Server
	hits           atomic.Int32
	fail           atomic.Bool
	issuerOverride string
	noRevocation   bool
}

func newDiscoveryServer(t *testing.T) *discoveryServer {
	t.Helper()
	d := &discoveryServer{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		d.hits.Add(1)
		if d.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss := d.URL
		if d.issuerOverride != "" {
			iss = d.issuerOverride
		}
		md := Metadata{
			Issuer:                iss,
			AuthorizationEndpoint: d.URL + "/auth",
			TokenEndpoint:         d.URL + "/token",
			JWKSURI:               d.URL + "/jwks",
		}
		if !d.noRevocation {
			md.RevocationEndpoint = d.URL + "/revoke"
		}
		json.NewEncoder(w).Encode(md)
	}))
	t.Cleanup(d.Close)
	return d
}

// newFakeClock is the broker's clock in these tests, at a fixed start.
func newFakeClock() *testutil.Clock {
	return testutil.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	t.Run("fetch, cache, expire", func(t *testing.T) {
		d := newDiscoveryServer(t)
		clk := newFakeClock()
		b := New(Options{Store: newMemStore(), Now: clk.Now})
		a := Account{Name: "w", Kind: KindOIDC, Issuer: d.URL, ClientID: "c"}
		md, err := b.Discover(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := md.TokenEndpoint, d.URL+"/token"; got != want {
			t.Errorf("got token endpoint %q, want %q", got, want)
		}
		b.Discover(ctx, a)
		if got := d.hits.Load(); got != 1 {
			t.Errorf("got %d fetches, want 1 (cached)", got)
		}
		clk.Advance(time.Hour + time.Second)
		b.Discover(ctx, a)
		if got := d.hits.Load(); got != 2 {
			t.Errorf("got %d fetches after the TTL, want 2", got)
		}
	})
	t.Run("overrides win", func(t *testing.T) {
		d := newDiscoveryServer(t)
		b := New(Options{Store: newMemStore()})
		a := Account{Name: "w", Kind: KindOIDC, Issuer: d.URL, ClientID: "c",
			Endpoints: Endpoints{Token: "http://127.0.0.1:1/proxy-token", Revocation: "http://127.0.0.1:1/proxy-revoke"}}
		md, err := b.Discover(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if md.TokenEndpoint != a.Endpoints.Token || md.RevocationEndpoint != a.Endpoints.Revocation {
			t.Errorf("got endpoints %q %q, want the overrides", md.TokenEndpoint, md.RevocationEndpoint)
		}
		if got, want := md.JWKSURI, d.URL+"/jwks"; got != want {
			t.Errorf("got jwks %q, want discovered %q", got, want)
		}
	})
	t.Run("no issuer, token override", func(t *testing.T) {
		b := New(Options{Store: newMemStore()})
		md, err := b.Discover(ctx, Account{Name: "w", Endpoints: Endpoints{Token: "http://127.0.0.1:1/t"}})
		if err != nil {
			t.Fatal(err)
		}
		if md.TokenEndpoint != "http://127.0.0.1:1/t" {
			t.Errorf("got %q, want the override", md.TokenEndpoint)
		}
		if _, err := b.Discover(ctx, Account{Name: "w"}); err == nil {
			t.Error("got no error without issuer and token endpoint")
		}
	})
	t.Run("issuer mismatch refused", func(t *testing.T) {
		d := newDiscoveryServer(t)
		d.issuerOverride = "https://evil.example.com"
		b := New(Options{Store: newMemStore()})
		_, err := b.Discover(ctx, Account{Name: "w", Issuer: d.URL})
		if err == nil {
			t.Fatal("got no error, want an issuer mismatch")
		}
	})
	t.Run("failure cached briefly then retried", func(t *testing.T) {
		d := newDiscoveryServer(t)
		d.fail.Store(true)
		clk := newFakeClock()
		b := New(Options{Store: newMemStore(), Now: clk.Now})
		a := Account{Name: "w", Issuer: d.URL}
		if _, err := b.Discover(ctx, a); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
		b.Discover(ctx, a)
		if got := d.hits.Load(); got != 1 {
			t.Errorf("got %d fetches within the failure TTL, want 1", got)
		}
		d.fail.Store(false)
		clk.Advance(discoveryFailTTL + time.Second)
		if _, err := b.Discover(ctx, a); err != nil {
			t.Fatalf("got %v after the IdP recovered, want success", err)
		}
	})
	t.Run("forget drops the document", func(t *testing.T) {
		d := newDiscoveryServer(t)
		b := New(Options{Store: newMemStore()})
		a := Account{Name: "w", Issuer: d.URL}
		b.Discover(ctx, a)
		b.forgetDiscovery(d.URL)
		b.Discover(ctx, a)
		if got := d.hits.Load(); got != 2 {
			t.Errorf("got %d fetches, want 2", got)
		}
	})
	t.Run("concurrent callers share one fetch", func(t *testing.T) {
		d := newDiscoveryServer(t)
		b := New(Options{Store: newMemStore()})
		a := Account{Name: "w", Issuer: d.URL}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := b.Discover(ctx, a); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := d.hits.Load(); got != 1 {
			t.Errorf("got %d fetches, want 1", got)
		}
	})
}
