package broker

// One refresh grant on the chain: sent with a long answer bound, handed to
// a detached waiter when its caller leaves, and its answer applied (the
// rotated refresh token stored before the access token is served).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/untrusted"
)

type postResult struct {
	body []byte
	err  error
}

// refreshWith runs the refresh grant with secret, with bounded retries.
// Called with the chain held.
//
// A refresh grant that has been sent is an unknown outcome until its answer
// arrives: the IdP may already have rotated the refresh token. So each IdP
// call runs detached from ctx, bounded only by answerWait; nothing else is
// sent on the chain until it ends; and it is retried only when nothing was
// sent (the connection could not be made) or the IdP answered 5xx or 429.
// The caller waits for the answer at most callerWait (or until ctx ends):
// then the chain is handed to a goroutine that waits for the answer,
// stores a rotated refresh token and caches the access token, then
// releases the chain (*held becomes false). Cancelling the call instead
// could lose a rotated refresh token the IdP already issued, and with it
// the grant.
func (b *Broker) refreshWith(ctx context.Context, a *account, cfg Account, secret Secret, aud string, scopes []string, held *bool) (Token, error) {
	var tok Token
	// The backoff between attempts ends when the broker stops; an IdP call
	// already sent never does.
	rctx, cancel := b.stop.bind(ctx)
	defer cancel()
	err := b.withRetry(rctx, "refresh", func() error {
		if b.stop.stopping() {
			return errStopping
		}
		endpoint, err := b.tokenEndpoint(ctx, cfg)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.learnEndpoint(endpoint)
		single := a.single()
		a.mu.Unlock()
		form := refreshForm(secret, aud, scopes)
		if single {
			// One token per account: ask for the whole grant (see
			// grantPolicy).
			form.Del("scope")
		}
		b.log.Debug("refresh", "account", a.name, "scopes", scopes, "audience", aud)
		done := make(chan postResult, 1)
		actx, acancel := context.WithTimeout(withAnswerWait(context.WithoutCancel(ctx)), b.stop.answerWait)
		go func() {
			defer acancel()
			r := postResult{err: errPanicked}
			defer func() { done <- r }()
			defer b.guard("refresh request")
			r.body, r.err = b.postForm(actx, "refresh", cfg, endpoint, form)
		}()
		wait := time.NewTimer(b.stop.callerWait)
		defer wait.Stop()
		var r postResult
		select {
		case r = <-done:
		case <-ctx.Done():
			*held = false
			go b.finishDetached(a, cfg, secret, aud, scopes, done)
			return fmt.Errorf("refresh: %w", ctx.Err())
		case <-wait.C:
			*held = false
			go b.finishDetached(a, cfg, secret, aud, scopes, done)
			return fmt.Errorf("refresh: %w: no answer within %s (the refresh goes on in the background)", ErrUnavailable, b.stop.callerWait)
		}
		if r.err != nil {
			var ie *IdPError
			if errors.As(r.err, &ie) && ie.StatusCode == 404 && cfg.Endpoints.Token == "" {
				// The token endpoint moved: drop the discovery document.
				b.forgetDiscovery(cfg.Issuer)
			}
			return settled(r.err, b.stop.answerWait)
		}
		tok, err = b.applyRefresh(a, cfg, secret, aud, scopes, r.body)
		return err
	})
	return tok, err
}

// refreshForm is the refresh grant's form. Refreshing an access token,
// https://www.rfc-editor.org/rfc/rfc6749#section-6: grant_type
// "refresh_token", refresh_token, and scope: "The requested scope MUST NOT
// include any scope not originally granted by the resource owner, and if
// omitted is treated as equal to the scope originally granted" — asking
// for fewer scopes down-scopes the token.
func refreshForm(secret Secret, aud string, scopes []string) url.Values {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {secret.Reveal()}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if aud != "" {
		form.Set("audience", aud)
		// RFC 8707 resource indicators must be absolute URIs
		// (https://www.rfc-editor.org/rfc/rfc8707#section-2).
		if u, err := url.Parse(aud); err == nil && u.IsAbs() {
			form.Set("resource", aud)
		}
	}
	return form
}

// settled turns a failed refresh call into an error withRetry retries only
// when resending the refresh token cannot be a reuse: the IdP answered (5xx
// or 429: it did not take the grant), or the connection could not be made.
// A fault after the request may have reached the IdP is final for this
// refresh; the next refresh sends the same token, which the IdP still
// accepts unless it rotated it.
func settled(err error, bound time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("refresh: %w: no answer within %s", ErrUnavailable, bound)
	}
	var te *transientError
	if !errors.As(err, &te) {
		return err
	}
	var ie *IdPError
	var oe *net.OpError
	if errors.As(te.err, &ie) || (errors.As(te.err, &oe) && oe.Op == "dial") {
		return err
	}
	return fmt.Errorf("%w: the request may have reached the provider, not resent: %w", ErrUnavailable, te.err)
}

// finishDetached completes a refresh call whose caller gave up, then
// releases the chain.
func (b *Broker) finishDetached(a *account, cfg Account, secret Secret, aud string, scopes []string, done <-chan postResult) {
	defer a.unlock()
	defer b.guard("refresh whose caller gave up")
	r := <-done
	if r.err != nil {
		b.log.Info("refresh whose caller gave up failed", "account", a.name, "err", r.err.Error())
		return
	}
	if _, err := b.applyRefresh(a, cfg, secret, aud, scopes, r.body); err != nil {
		b.log.Info("refresh whose caller gave up: bad response", "account", a.name, "err", err.Error())
		return
	}
	b.log.Info("refresh whose caller gave up completed", "account", a.name)
}

// applyRefresh processes a 200 answer of the refresh grant: a rotated
// refresh token is adopted in memory and written to the Store first, then
// the access token is checked and cached. Called with the chain held.
func (b *Broker) applyRefresh(a *account, cfg Account, used Secret, aud string, scopes []string, body []byte) (Token, error) {
	tr, err := decodeTokenResponse("refresh", body)
	if err != nil {
		return Token{}, err // malformed: no refresh token to adopt, chain untouched
	}
	now := b.now()
	var putErr error
	if nrt := Secret(tr.RefreshToken); nrt != "" && nrt != used {
		// "The authorization server MAY issue a new refresh token, in which
		// case the client MUST discard the old refresh token and replace it
		// with the new refresh token."
		// https://www.rfc-editor.org/rfc/rfc6749#section-6
		a.mu.Lock()
		a.setSecret(nrt)
		a.unsaved = true
		a.mu.Unlock()
		putErr = b.store.Put(a.name, nrt)
		a.recordPut(nrt, putErr, now)
		if putErr != nil {
			b.log.Warn("storing the rotated refresh token failed; keeping it in memory and retrying", "account", a.name, "err", putErr.Error())
		}
	}
	tokenType := "Bearer"
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return Token{}, fmt.Errorf("refresh: unsupported token_type %q", untrusted.Text(tr.TokenType, 32))
	}
	tok := issuedToken(a.name, cfg, tr, tokenType, aud, scopes, now)
	wider := len(scopes) > 0 && !subset(tok.Scopes, scopes)
	granted := tok.Scopes
	a.mu.Lock()
	entry := newEntry(aud, scopes, tok, a.early, now)
	logST := false
	if wider && !a.singleToken {
		a.singleToken = true
		logST = !a.loggedST
		a.loggedST = true
	}
	if a.single() {
		// The IdP ignores scope on refresh and may invalidate earlier access
		// tokens: keep one token per account.
		a.tokens = []cacheEntry{entry}
	} else {
		kept := a.tokens[:0:0]
		for _, e := range a.tokens {
			if (e.aud == aud && slices.Equal(e.key, scopes)) || !e.tok.Valid(now, 0) {
				continue
			}
			kept = append(kept, e)
		}
		a.tokens = append(kept, entry)
	}
	a.lastRefresh = now
	if tr.RefreshExpiresIn > 0 {
		a.refreshExp = now.Add(time.Duration(tr.RefreshExpiresIn) * time.Second)
	} else if tr.RefreshToken != "" {
		a.refreshExp = time.Time{}
	}
	a.scheduleKeepAlive(now)
	if !a.unsaved {
		a.lastErr = ""
	}
	changed := a.setState(StateSignedIn, nil)
	a.mu.Unlock()
	if logST {
		b.log.Info("identity provider ignores scope on refresh: keeping one token per account", "account", a.name, "requested", scopes, "granted", granted)
	}
	if changed {
		b.emit(Event{Account: a.name, State: StateSignedIn})
	}
	if putErr != nil {
		b.emit(Event{Account: a.name, State: StateSignedIn, Err: fmt.Errorf("store rotated refresh token: %w", putErr)})
		b.wake()
	} else {
		b.saveChainTimes(a)
	}
	b.log.Debug("refreshed", "account", a.name, "token", tok)
	return tok, nil
}

// issuedToken is the Token a successful token endpoint answer tr carries,
// for (aud, the requested scopes) at now.
func issuedToken(account string, cfg Account, tr *tokenResponse, tokenType, aud string, scopes []string, now time.Time) Token {
	// "scope: OPTIONAL, if identical to the scope requested by the client;
	// otherwise, REQUIRED." https://www.rfc-editor.org/rfc/rfc6749#section-5.1
	granted := scopes
	if tr.Scope != "" {
		granted = sortedScopes(strings.Fields(tr.Scope))
	}
	lifetime := time.Duration(tr.ExpiresIn) * time.Second
	if lifetime <= 0 {
		lifetime = defaultLifetime
	}
	return Token{
		Account:     account,
		TokenType:   tokenType,
		AccessToken: Secret(tr.AccessToken),
		Expiry:      now.Add(lifetime),
		Scopes:      granted,
		Audience:    aud,
		Username:    cfg.Username,
		Server:      cfg.Server,
	}
}

// subset reports whether every element of sorted a is in sorted b.
func subset(a, b []string) bool {
	j := 0
	for _, s := range a {
		for j < len(b) && b[j] < s {
			j++
		}
		if j == len(b) || b[j] != s {
			return false
		}
	}
	return true
}
