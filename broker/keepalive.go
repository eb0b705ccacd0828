package broker

import (
	"context"
	"errors"
	"time"
)

// keepAliveRetry is the wait before retrying a keep-alive refresh that
// failed because the IdP could not be reached.
const keepAliveRetry = 30 * time.Second

// Run is the keep-alive scheduler. It blocks until ctx is done, then
// returns nil. On start it loads every account's secret from the Store;
// then, for each signed-in oidc account, it refreshes before the refresh
// token itself expires: at about 75% of refresh_expires_in when the IdP
// sends it, otherwise every Account.KeepAlive (default 10 minutes;
// negative disables). Keep-alive refreshes go through the same serialized
// chain and client authentication as any other refresh. It also retries
// Store writes of rotated refresh tokens that failed, with backoff.
//
// Run must be called at most once at a time.
func (b *Broker) Run(ctx context.Context) error {
	for {
		next := b.runDueGuarded(ctx)
		var timer <-chan time.Time
		var t *time.Timer
		if !next.IsZero() {
			t = time.NewTimer(max(next.Sub(b.now()), 0))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-b.kick:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// wake makes Run recompute its schedule (after a sign-in, a new account, a
// failed Store write, or a clock change in tests).
func (b *Broker) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// runDue does the keep-alive work that is due now and returns when the
// next is due (zero: nothing scheduled).
func (b *Broker) runDue(ctx context.Context) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, a := range b.snapshot() {
		if ctx.Err() != nil {
			return next
		}
		a.mu.RLock()
		cfg, loaded, state := a.cfg, a.loaded, a.state
		unsaved, nextPut, nextKeep := a.unsaved, a.nextPut, a.nextKeep
		a.mu.RUnlock()
		now := b.now()

		if !loaded && state != StateNeedsLogin {
			b.loadInBackground(ctx, a)
			a.mu.RLock()
			state, nextKeep = a.state, a.nextKeep
			a.mu.RUnlock()
		}
		if unsaved {
			if !now.Before(nextPut) {
				if b.withChain(ctx, a, func() { b.flushSecret(a) }) {
					a.mu.RLock()
					unsaved, nextPut = a.unsaved, a.nextPut
					a.mu.RUnlock()
				}
			}
			if unsaved {
				soonest(nextPut)
			}
		}
		if cfg.Kind != KindOIDC || cfg.KeepAlive < 0 || (state != StateSignedIn && state != StateOffline) || nextKeep.IsZero() {
			continue
		}
		if now.Before(nextKeep) {
			soonest(nextKeep)
			continue
		}
		b.keepAlive(ctx, a)
		a.mu.RLock()
		soonest(a.nextKeep)
		a.mu.RUnlock()
	}
	return next
}

// withChain runs f with the account's chain held, waiting at most a short
// while: Run never blocks behind a slow refresh for long.
func (b *Broker) withChain(ctx context.Context, a *account, f func()) bool {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := a.lock(lctx); err != nil {
		return false
	}
	defer a.unlock()
	f()
	return true
}

// loadInBackground reads an account's secret from the Store so its state
// is known and its keep-alive scheduled.
func (b *Broker) loadInBackground(ctx context.Context, a *account) {
	b.withChain(ctx, a, func() {
		if _, _, err := b.loadSecret(a); err != nil && !errors.Is(err, ErrNeedsLogin) {
			b.log.Warn("reading the stored secret failed", "account", a.name, "err", err.Error())
		}
	})
}

// keepAlive refreshes the account's default token through the chain.
func (b *Broker) keepAlive(ctx context.Context, a *account) {
	a.mu.RLock()
	aud, scopes := a.cfg.Audience, a.defScopes
	a.mu.RUnlock()
	kctx, cancel := context.WithTimeout(ctx, b.stop.callerWait)
	defer cancel()
	b.log.Debug("keep-alive refresh", "account", a.name)
	_, err := b.refreshToken(kctx, a, aud, scopes, 0, true)
	if err == nil {
		return
	}
	b.log.Info("keep-alive refresh failed", "account", a.name, "err", err.Error())
	a.mu.Lock()
	if a.state == StateSignedIn || a.state == StateOffline {
		a.nextKeep = b.now().Add(keepAliveRetry)
	}
	a.mu.Unlock()
}
