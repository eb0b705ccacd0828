package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// defaultLifetime is assumed when a token response has no expires_in
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.1 only RECOMMENDS it).
const defaultLifetime = 5 * time.Minute

// Token returns a background token of the account for the requested
// scopes and audience, valid for more than max(req.MinValid, the account's
// EarlyRefresh). It serves the cache when it can and otherwise refreshes
// through the account's single refresh chain: refreshes of one account are
// serialized, and identical concurrent requests share one IdP call.
//
// Errors wrap ErrUnknownAccount, ErrNeedsLogin (with the IdP's *IdPError
// when it said invalid_grant), ErrUnavailable, or an *IdPError, inside an
// *AccountError. When the IdP cannot be reached and a cached token for the
// request is still valid, that token is returned even if it has less than
// MinValid left.
//
// Token is safe for concurrent use. The returned Token's Scopes slice is
// shared and must not be modified; its AccessToken must not be logged. A
// cache hit does not allocate.
func (b *Broker) Token(ctx context.Context, req TokenRequest) (Token, error) {
	a := b.get(req.Account)
	if a == nil {
		return Token{}, unknownAccount(req.Account)
	}
	var buf [8]string
	now := b.now()
	a.mu.RLock()
	if a.cfg.Kind == KindAppPassword {
		t := a.basic
		a.mu.RUnlock()
		if t.AccessToken != "" {
			return t, nil
		}
		return b.loadAppPassword(ctx, a)
	}
	aud := req.Audience
	if aud == "" {
		aud = a.cfg.Audience
	}
	scopes := normScopes(req.Scopes, a.defScopes, buf[:0])
	t, ok := a.lookup(aud, scopes, req.MinValid, true, now)
	a.mu.RUnlock()
	if ok {
		return t, nil
	}
	return b.refreshToken(ctx, a, aud, scopes, req.MinValid, false)
}

// normScopes returns the sorted, de-duplicated requested scopes (def when
// none were requested), using buf for the copy when one is needed so the
// common cases do not allocate.
func normScopes(req, def, buf []string) []string {
	if len(req) == 0 {
		return def
	}
	sortedUnique := true
	for i := 1; i < len(req); i++ {
		if req[i-1] >= req[i] {
			sortedUnique = false
			break
		}
	}
	if sortedUnique {
		return req
	}
	if len(req) <= cap(buf) {
		s := append(buf[:0], req...)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return sortedScopes(req)
}

// refreshToken obtains a token for (aud, scopes) through the refresh chain.
// With force it refreshes even when the cache could serve (keep-alive).
func (b *Broker) refreshToken(ctx context.Context, a *account, aud string, reqScopes []string, minValid time.Duration, force bool) (Token, error) {
	// reqScopes may live in the caller's stack buffer: only a copy is kept
	// (a distinct variable, so escape analysis keeps the buffer on the
	// stack).
	scopes := slices.Clone(reqScopes)
	arrived := b.now()
	if err := a.lock(ctx); err != nil {
		if t, ok := b.stale(a, aud, scopes); ok {
			return t, nil
		}
		return Token{}, &AccountError{Account: a.name, Err: fmt.Errorf("refresh: waiting for the refresh chain: %w: %w", ErrUnavailable, err)}
	}
	held := true
	defer func() {
		if held {
			a.unlock()
		}
	}()
	a.mu.RLock()
	now := b.now()
	// A waiter that finds the token another caller just fetched is served
	// by it: the entry's early refresh is capped at a quarter of its
	// lifetime, so a fresh token always qualifies; and min_valid counts
	// from when this caller asked (or from a refresh just made, see
	// burstBase), so a burst of identical requests shares one refresh
	// even when min_valid is close to the token lifetime.
	t, ok := a.lookup(aud, scopes, max(minValid-now.Sub(a.burstBase(arrived, now)), 0), true, now)
	if force {
		// A keep-alive is due no longer when a caller refreshed the chain
		// while it waited.
		ok = ok && !a.nextKeep.IsZero() && now.Before(a.nextKeep)
	}
	a.mu.RUnlock()
	if ok {
		return t, nil // another caller refreshed while we waited
	}
	if b.stop.stopping() {
		if t, ok := b.stale(a, aud, scopes); ok {
			return t, nil
		}
		return Token{}, &AccountError{Account: a.name, Err: fmt.Errorf("refresh: %w", errStopping)}
	}
	sendScopes, perr := b.grantPolicy(a, aud, scopes, minValid, force)
	if perr != nil {
		return Token{}, perr
	}
	b.flushSecret(a)
	secret, cfg, err := b.loadSecret(a)
	if err != nil {
		return Token{}, err
	}
	// Never rotate what cannot be stored (see writable.go).
	if err := b.checkWritable(ctx, a); err != nil {
		return b.lockedStore(a, aud, scopes, minValid, err)
	}
	for try := 0; ; try++ {
		tok, err := b.refreshWith(ctx, a, cfg, secret, aud, sendScopes, &held)
		if err == nil {
			return b.afterRefresh(a, tok, aud, scopes, minValid)
		}
		if !held {
			// The caller's context ended while the IdP call was in flight;
			// the call finishes in the background and keeps the chain.
			if t, ok := b.stale(a, aud, scopes); ok {
				return t, nil
			}
			return Token{}, &AccountError{Account: a.name, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
		var ie *IdPError
		if errors.As(err, &ie) && deadRefreshToken(ie) {
			// invalid_grant: "The provided authorization grant ... or refresh
			// token is invalid, expired, revoked ..."
			// (https://www.rfc-editor.org/rfc/rfc6749#section-5.2). Someone
			// may have signed in again and stored a new refresh token: re-read
			// the Store once before giving up.
			if try == 0 {
				if s, gerr := b.store.Get(a.name); gerr == nil && s != "" && s != secret {
					a.mu.Lock()
					used := a.wasUsed(s)
					if !used {
						a.setSecret(s)
						a.unsaved = false
					}
					a.mu.Unlock()
					if !used {
						b.log.Info("refresh token refused; retrying once with the one in the store", "account", a.name)
						secret = s
						continue
					}
				}
			}
			a.mu.Lock()
			changed := a.toNeedsLogin(ie)
			a.mu.Unlock()
			b.log.Info("refresh token refused: account needs sign-in", "account", a.name, "error", ie.Code)
			if changed {
				b.emit(Event{Account: a.name, State: StateNeedsLogin, Err: ie})
			}
			return Token{}, &AccountError{Account: a.name, Err: fmt.Errorf("refresh: %w: %w", ErrNeedsLogin, ie)}
		}
		if errors.Is(err, ErrUnavailable) {
			if b.stop.stopping() {
				// Cut short by the stop, not an IdP outage.
				if t, ok := b.stale(a, aud, scopes); ok {
					return t, nil
				}
				return Token{}, &AccountError{Account: a.name, Err: err}
			}
			return b.offline(a, aud, scopes, err)
		}
		a.mu.Lock()
		a.lastErr = err.Error()
		a.mu.Unlock()
		return Token{}, &AccountError{Account: a.name, Err: err}
	}
}

// stale returns a cached token for (aud, scopes) that is still valid at
// all, for serving while the IdP cannot be reached.
func (b *Broker) stale(a *account, aud string, scopes []string) (Token, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	t, ok := a.lookup(aud, scopes, 0, false, b.now())
	if ok {
		b.log.Info("identity provider unavailable: serving a cached token", "account", a.name, "expiry", t.Expiry)
	}
	return t, ok
}

// offline records an unreachable IdP and serves a still-valid cached token
// when there is one.
func (b *Broker) offline(a *account, aud string, scopes []string, err error) (Token, error) {
	a.mu.Lock()
	changed := false
	if a.state == StateSignedIn || a.state == StateOffline {
		changed = a.setState(StateOffline, err)
	} else {
		a.lastErr = err.Error()
	}
	a.mu.Unlock()
	if changed {
		b.log.Info("identity provider unavailable", "account", a.name, "err", err.Error())
		b.emit(Event{Account: a.name, State: StateOffline, Err: err})
	}
	if t, ok := b.stale(a, aud, scopes); ok {
		return t, nil
	}
	return Token{}, &AccountError{Account: a.name, Err: err}
}

// loadSecret returns the account's secret, reading the Store on first use.
// Called with the chain held. An account whose Store has no secret is
// signed out (never signed in, or signed out elsewhere); its requests fail
// with an error wrapping both ErrNeedsLogin and ErrSignedOut.
func (b *Broker) loadSecret(a *account) (Secret, Account, error) {
	a.mu.RLock()
	cfg, s, loaded, st, cause := a.cfg, a.secret, a.loaded, a.state, a.idpErr
	a.mu.RUnlock()
	if st == StateNeedsLogin {
		if cause != nil {
			return "", cfg, &AccountError{Account: a.name, Err: fmt.Errorf("%w: %w", ErrNeedsLogin, cause)}
		}
		return "", cfg, &AccountError{Account: a.name, Err: ErrNeedsLogin}
	}
	if loaded && s != "" {
		return s, cfg, nil
	}
	signedOut := &AccountError{Account: a.name, Err: fmt.Errorf("%w: %w", ErrNeedsLogin, ErrSignedOut)}
	if loaded {
		return "", cfg, signedOut
	}
	s, err := b.store.Get(a.name)
	if errors.Is(err, ErrNotFound) || (err == nil && s == "") {
		a.mu.Lock()
		a.loaded, a.secret = true, ""
		changed := a.setState(StateSignedOut, nil)
		a.mu.Unlock()
		if changed {
			b.emit(Event{Account: a.name, State: StateSignedOut})
		}
		return "", cfg, signedOut
	}
	if err != nil {
		return "", cfg, &AccountError{Account: a.name, Err: fmt.Errorf("read secret: %w", err)}
	}
	a.mu.Lock()
	a.setSecret(s)
	changed := a.setState(StateSignedIn, nil)
	b.restoreKeepAlive(a, s, b.now())
	a.mu.Unlock()
	if changed {
		b.emit(Event{Account: a.name, State: StateSignedIn})
	}
	return s, cfg, nil
}

// loadAppPassword loads an app-password account's Basic credential.
func (b *Broker) loadAppPassword(ctx context.Context, a *account) (Token, error) {
	if err := a.lock(ctx); err != nil {
		return Token{}, &AccountError{Account: a.name, Err: fmt.Errorf("load app password: %w", err)}
	}
	defer a.unlock()
	a.mu.RLock()
	t := a.basic
	a.mu.RUnlock()
	if t.AccessToken != "" {
		return t, nil
	}
	secret, _, err := b.loadSecret(a)
	if err != nil {
		return Token{}, err
	}
	a.mu.Lock()
	a.basic = a.basicToken(secret)
	t = a.basic
	a.mu.Unlock()
	return t, nil
}

// flushSecret retries a pending Store write of the in-memory refresh
// token. Called with the chain held.
func (b *Broker) flushSecret(a *account) {
	a.mu.RLock()
	s, unsaved := a.secret, a.unsaved
	a.mu.RUnlock()
	if !unsaved || s == "" {
		return
	}
	a.mu.RLock()
	failed := a.putFails > 0
	a.mu.RUnlock()
	err := b.store.Put(a.name, s)
	a.recordPut(s, err, b.now())
	if err != nil {
		b.log.Warn("storing the rotated refresh token failed again; keeping it in memory", "account", a.name, "err", err.Error())
		return
	}
	b.log.Info("rotated refresh token stored", "account", a.name)
	b.saveChainTimes(a)
	if failed {
		// The account is no longer degraded: tell the listeners (the tray).
		a.mu.RLock()
		st := a.state
		a.mu.RUnlock()
		b.emit(Event{Account: a.name, State: st})
	}
}

// recordPut records the outcome of a Store write of s.
func (a *account) recordPut(s Secret, err error, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		if a.secret == s {
			a.unsaved, a.putFails, a.nextPut = false, 0, time.Time{}
			a.lastErr = ""
		}
		return
	}
	a.putFails++
	a.nextPut = now.Add(putBackoff(a.putFails))
	a.lastErr = fmt.Sprintf("store rotated refresh token: %v", err)
}

// tokenEndpoint returns the account's token endpoint: the override, else
// the discovered one.
func (b *Broker) tokenEndpoint(ctx context.Context, cfg Account) (string, error) {
	if cfg.Endpoints.Token != "" {
		return cfg.Endpoints.Token, nil
	}
	md, err := b.Discover(ctx, cfg)
	if err != nil {
		return "", err
	}
	return md.TokenEndpoint, nil
}
