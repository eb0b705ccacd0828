package broker

// Cache policy that depends on how an identity provider treats a grant:
// providers that keep one access token per grant, scopes a provider
// ignores on refresh, refresh-token failures that are not spelled
// invalid_grant, and min_valid requests no token of the provider can meet.

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Values of Account.TokensPerGrant.
const (
	// TokensPerGrantAuto (the default) keeps one token per scope set,
	// except on the Nextcloud oidc app (endpoints under /apps/oidc/),
	// which keeps one access token per grant.
	TokensPerGrantAuto = ""
	// TokensPerGrantOne keeps exactly one live access token per account,
	// replaced on every refresh: for providers whose every refresh
	// invalidates the previous access token.
	TokensPerGrantOne = "one"
	// TokensPerGrantMany keeps one token per (audience, scope set), even
	// under /apps/oidc/.
	TokensPerGrantMany = "many"
)

// ErrBadRequest wraps requests the broker refuses as they are: a scope the
// account's single live token lacks, a min_valid no token of the provider
// can meet. Asking again the same way fails again.
var ErrBadRequest = errors.New("request cannot be served")

// nextcloudOIDCPath is where the Nextcloud oidc app serves its endpoints
// (index.php/apps/oidc/authorize, token, userinfo, jwks). The app keeps
// one access token per grant and overwrites it on every refresh
// (github.com/H2CK/oidc 2.0.9 lib/Controller/OIDCApiController.php, getToken).
const nextcloudOIDCPath = "/apps/oidc/"

// IsNextcloudOIDC reports whether endpoint (an issuer, authorization or
// token endpoint URL) belongs to the Nextcloud oidc app.
func IsNextcloudOIDC(endpoint string) bool {
	u, err := url.Parse(endpoint)
	return err == nil && strings.Contains(u.Path+"/", nextcloudOIDCPath)
}

// oneTokenPerGrant reports whether cfg, whose token endpoint is endpoint
// (may be empty when not known yet), keeps one access token per account.
func oneTokenPerGrant(cfg Account, endpoint string) bool {
	switch cfg.TokensPerGrant {
	case TokensPerGrantOne:
		return true
	case TokensPerGrantMany:
		return false
	}
	return IsNextcloudOIDC(cfg.Issuer) || IsNextcloudOIDC(cfg.Endpoints.Token) || (endpoint != "" && IsNextcloudOIDC(endpoint))
}

// ValidTokensPerGrant checks a tokens_per_grant setting.
func ValidTokensPerGrant(v string) error {
	switch v {
	case TokensPerGrantAuto, TokensPerGrantOne, TokensPerGrantMany:
		return nil
	}
	return fmt.Errorf("tokens_per_grant %q: want %q or %q", v, TokensPerGrantOne, TokensPerGrantMany)
}

// learnEndpoint records that the account's refreshes go to endpoint and
// switches it to one token per account when that endpoint is the
// Nextcloud oidc app's. Called with a.mu held.
func (a *account) learnEndpoint(endpoint string) {
	if !a.oneToken && oneTokenPerGrant(a.cfg, endpoint) {
		a.oneToken = true
		a.tokens = nil // earlier tokens may be dead after the next refresh
	}
}

// deadRefreshToken reports whether an error answer to the refresh grant
// says the refresh token is no good: RFC 6749's invalid_grant ("The
// provided authorization grant ... or refresh token is invalid, expired,
// revoked ...", https://www.rfc-editor.org/rfc/rfc6749#section-5.2), or a
// provider's invalid_request that says the same in words:
//   - Dex: "Refresh token is invalid or has already been claimed by
//     another client." and "Refresh token expired." (HTTP 400,
//     dexidp/dex server/refreshhandlers.go, getRefreshTokenFromStorage);
//   - releases of the Nextcloud oidc app before 2.0.9 answered
//     invalid_request "Could not find access token for code or
//     refresh_token." (OIDCApiController.php, getToken); 2.0.9 says
//     invalid_grant.
func deadRefreshToken(ie *IdPError) bool {
	switch ie.Code {
	case "invalid_grant":
		return true
	case "invalid_request":
	default:
		return false
	}
	d := strings.ToLower(ie.Description)
	if !strings.Contains(d, "refresh token") && !strings.Contains(d, "refresh_token") {
		return false
	}
	for _, w := range []string{"invalid", "expired", "revoked", "already been claimed", "already used", "was used", "could not find", "not found", "unknown"} {
		if strings.Contains(d, w) {
			return true
		}
	}
	return false
}

// missingScopes returns the requested scopes (sorted) that granted
// (sorted) lacks.
func missingScopes(requested, granted []string) []string {
	var out []string
	for _, s := range requested {
		if !subsetOne(s, granted) {
			out = append(out, s)
		}
	}
	return out
}

func subsetOne(s string, sorted []string) bool {
	for _, g := range sorted {
		if g == s {
			return true
		}
	}
	return false
}

// scopeError refuses a request for scopes the account's one live token
// does not carry: the provider ignores scope on refresh, so refreshing
// cannot add them; only a sign-in that asks for them can.
func scopeError(a *account, missing, granted []string) error {
	want := sortedScopes(append(append([]string(nil), a.cfg.Scopes...), missing...))
	return &AccountError{Account: a.name, Err: fmt.Errorf("%w: the account's token lacks scope %s (granted: %s); this identity provider keeps one token per sign-in, "+
		"so sign in again asking for it: ncagent login %s --scopes '%s'", ErrBadRequest, strings.Join(missing, " "), strings.Join(granted, " "), a.name, strings.Join(want, " "))}
}

// lifetimeError refuses a min_valid beyond what the provider issues.
func lifetimeError(a *account, need, lifetime time.Duration) error {
	return &AccountError{Account: a.name, Err: fmt.Errorf("%w: min_valid %s exceeds the provider's token lifetime of %s", ErrBadRequest, shortDuration(need), shortDuration(lifetime))}
}

// cannotMeet returns the min_valid error when minValid exceeds the
// lifetime of the provider's tokens, learned from its latest answer, so
// that no refresh is made that could not serve. Called with a.mu held
// (read).
func (a *account) cannotMeet(minValid time.Duration) error {
	if a.lifetime > 0 && minValid > a.lifetime {
		return lifetimeError(a, minValid, a.lifetime)
	}
	return nil
}

// fitMinValid checks a token fresh from the provider against need,
// recording the provider's token lifetime for cannotMeet.
func (b *Broker) fitMinValid(a *account, tok Token, need time.Duration) (Token, error) {
	if tok.Expiry.IsZero() {
		return tok, nil
	}
	a.mu.Lock()
	if !a.lastRefresh.IsZero() && tok.Expiry.After(a.lastRefresh) {
		a.lifetime = tok.Expiry.Sub(a.lastRefresh)
	}
	err := a.cannotMeet(need)
	a.mu.Unlock()
	if err != nil {
		return Token{}, err
	}
	return tok, nil
}

// checkScopes refuses, in one-token mode, a request for scopes the live
// token lacks. Called with a.mu held (read).
func (a *account) checkScopes(aud string, scopes []string) error {
	if !a.single() {
		return nil
	}
	for _, e := range a.tokens {
		if e.aud != aud {
			continue
		}
		if m := missingScopes(scopes, e.tok.Scopes); len(m) > 0 {
			return scopeError(a, m, e.tok.Scopes)
		}
	}
	return nil
}

// single reports whether the account keeps one token per account: by
// policy (oneToken) or because the provider was seen ignoring scope on
// refresh (singleToken). Called with a.mu held.
func (a *account) single() bool { return a.oneToken || a.singleToken }

// shortDuration formats d without zero units: 1h, 5m, 1h30m, 90s → 1m30s.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// grantPolicy runs, with the chain held and before a refresh, the checks
// that make a refresh pointless, and returns the scopes the refresh is
// keyed by: the requested ones, or in one-token mode the grant's (the
// refresh then sends no scope, "treated as equal to the scope originally
// granted", https://www.rfc-editor.org/rfc/rfc6749#section-6, and the
// answer replaces the one token of the account).
func (b *Broker) grantPolicy(a *account, aud string, scopes []string, need time.Duration, force bool) ([]string, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !force {
		if err := a.cannotMeet(need); err != nil {
			return nil, err
		}
	}
	if !a.single() {
		return scopes, nil
	}
	if !force {
		if err := a.checkScopes(aud, scopes); err != nil {
			return nil, err
		}
	}
	if a.granted != nil {
		return a.granted, nil
	}
	return scopes, nil
}

// afterRefresh checks a token fresh from the provider against the request:
// min_valid within the provider's lifetime, and in one-token mode the
// requested scopes within the token's.
func (b *Broker) afterRefresh(a *account, tok Token, aud string, scopes []string, need time.Duration) (Token, error) {
	tok, err := b.fitMinValid(a, tok, need)
	if err != nil {
		return Token{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.single() {
		return tok, nil
	}
	a.granted = tok.Scopes
	if m := missingScopes(scopes, tok.Scopes); len(m) > 0 {
		return Token{}, scopeError(a, m, tok.Scopes)
	}
	return tok, nil
}

// cachedTokenEndpoint returns the account's token endpoint when it is
// known without a network call: the override, else the discovery
// document already fetched for its issuer (the sign-in fetched it).
func (b *Broker) cachedTokenEndpoint(cfg Account) string {
	if cfg.Endpoints.Token != "" {
		return cfg.Endpoints.Token
	}
	b.discMu.Lock()
	e := b.disc[cfg.Issuer]
	b.discMu.Unlock()
	if e == nil {
		return ""
	}
	select {
	case <-e.done:
		return e.md.TokenEndpoint
	default:
		return ""
	}
}

// burstWindow is how long a token fresh from the provider counts as
// "just issued" for requests that arrive right after its refresh.
const burstWindow = time.Second

// burstBase is the moment a request that arrived at arrived measures its
// min_valid from: its arrival, or the latest refresh when that was less
// than burstWindow ago. So a burst of identical requests whose min_valid
// is close to the token lifetime shares one refresh instead of making one
// each (every later caller would otherwise find the fresh token a few
// milliseconds short), at the price of min_valid being honoured to within
// burstWindow. Called with a.mu held.
func (a *account) burstBase(arrived, now time.Time) time.Time {
	if lr := a.lastRefresh; lr.Before(arrived) && now.Sub(lr) < burstWindow {
		return lr
	}
	return arrived
}
