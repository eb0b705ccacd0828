package broker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStoreLocked is wrapped by errors of requests that would rotate an
// account's secret while the Store cannot take the new one (a locked
// keychain, a file store not unlocked). Nothing was sent to the IdP.
var ErrStoreLocked = errors.New("the secret store cannot keep a new secret now")

// WritableStore is implemented by Stores that can tell, before a request
// that may rotate the secret is sent, whether a Put would be accepted now.
// The Broker checks it (when the Store implements it) before every refresh
// grant: a refresh whose rotated refresh token cannot be stored costs the
// grant at IdPs that revoke on reuse, so none is sent.
type WritableStore interface {
	// Writable returns nil when a Put would be accepted now, else an error
	// saying why and what to do. It must not prompt the user, and must be
	// bounded by a timeout.
	Writable(ctx context.Context) error
}

// writableTimeout bounds a Writable check.
const writableTimeout = 5 * time.Second

// checkWritable returns an error wrapping ErrStoreLocked (and the Store's
// cause) when the Store says it cannot take a new secret now; nil when it
// can or cannot tell. Called with the chain held, before a refresh grant.
func (b *Broker) checkWritable(ctx context.Context, a *account) error {
	ws, ok := b.store.(WritableStore)
	if !ok {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, writableTimeout)
	defer cancel()
	err := ws.Writable(cctx)
	if err == nil {
		return nil
	}
	a.mu.Lock()
	a.lastErr = "store: " + err.Error()
	a.mu.Unlock()
	b.log.Info("secret store cannot take a rotated secret now: refresh not sent", "account", a.name, "err", err.Error())
	return &AccountError{Account: a.name, Err: fmt.Errorf("refresh not sent: %w: %w", ErrStoreLocked, err)}
}

// lockedStore answers a request that needs a refresh while the Store
// cannot take a rotated secret: a cached token that still meets the
// request (more than minValid left, early refresh aside), else err.
// Called with the chain held.
func (b *Broker) lockedStore(a *account, aud string, scopes []string, minValid time.Duration, err error) (Token, error) {
	a.mu.RLock()
	t, ok := a.lookup(aud, scopes, minValid, false, b.now())
	a.mu.RUnlock()
	if ok {
		return t, nil
	}
	return Token{}, err
}

// StoreChanged tells the Broker that the Store can be used again (it was
// unlocked): Run reads the secrets it could not read at once.
func (b *Broker) StoreChanged() { b.wake() }
