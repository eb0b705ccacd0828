package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
)

// lockableStore is a memStore whose Writable says locked while locked is
// set, as the agent's Keychain does for a locked Secret Service collection.
type lockableStore struct {
	*memStore
	mu     sync.Mutex // guards locked, checks
	locked bool
	checks int
}

var _ WritableStore = (*lockableStore)(nil)

func (s *lockableStore) Writable(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks++
	if s.locked {
		return errStoreLocked
	}
	return nil
}

func (s *lockableStore) setLocked(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.locked = v
}

// TestRefreshNeverSentWhileStoreLocked: with the Store locked no refresh
// grant reaches the IdP; a cached token that meets the request is served,
// others get ErrStoreLocked; once unlocked the chain continues (fosite
// revokes the grant on any reuse).
func TestRefreshNeverSentWhileStoreLocked(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	ls := &lockableStore{memStore: it.store}
	it.b.store = ls
	ctx := context.Background()
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	ls.setLocked(true)
	// Three minutes on: the cached token has two left.
	it.b.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	before := it.idp.Calls("refresh_token")
	tests := []struct {
		name    string
		req     TokenRequest
		wantErr bool
	}{
		{"cached token meets the request", TokenRequest{Account: "work"}, false},
		{"needs a refresh", TokenRequest{Account: "work", MinValid: 4 * time.Minute}, true},
		{"another scope set", TokenRequest{Account: "work", Scopes: []string{"files"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := it.b.Token(ctx, tt.req)
			if tt.wantErr {
				if !errors.Is(err, ErrStoreLocked) || !errors.Is(err, errStoreLocked) {
					t.Fatalf("got (%v, %v), want ErrStoreLocked wrapping the store's cause", tok, err)
				}
				return
			}
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("got (%v, %v), want the cached token", tok, err)
			}
		})
	}
	if got := it.idp.Calls("refresh_token") - before; got != 0 {
		t.Errorf("refresh grants sent while locked: got %d, want 0", got)
	}
	ls.setLocked(false)
	it.b.now = time.Now
	before = it.idp.Calls("refresh_token")
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Fatalf("token after unlock: %v", err)
	}
	if got := it.idp.Calls("refresh_token") - before; got != 1 {
		t.Errorf("refresh grants after unlock: got %d, want 1", got)
	}
	if !it.idp.RefreshTokenActive(it.memRefresh().Reveal()) {
		t.Error("the refresh token after unlock is not active: the grant was lost")
	}
}
