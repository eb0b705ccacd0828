package broker

import (
	"context"
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
			time.Sleep(200 * time.Millisecond)
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
