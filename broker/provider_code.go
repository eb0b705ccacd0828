package broker

// The authorization code exchange of the browser sign-in, through
// golang.org/x/oauth2 (Config.Exchange with VerifierOption): it builds the
// RFC 6749 §4.1.3 request with the RFC 7636 code_verifier and the client
// authentication, and parses the answer. Here it is the library that does
// the job; what stays ours is the classification of its errors (IdP error,
// unavailable, redirect refused) and their scrubbing.
//
// The refresh grant and the RFC 8693 exchange do not go through x/oauth2:
// its TokenSource refreshes on its own schedule and hands the new token to
// the caller before anyone can persist a rotated refresh token, while the
// chain must write that token to the store before it returns anything
// (ARCHITECTURE.md, "The refresh chain"); and x/oauth2 has no token
// exchange grant. The JWT/JWKS policy and the keychain timeouts have no
// counterpart there at all.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// ExchangeCode redeems an authorization code at the token endpoint
// (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3) with its PKCE
// verifier (https://www.rfc-editor.org/rfc/rfc7636#section-4.5) and the
// redirect URI of the authorization request, authenticated as the
// account's client. Errors are as Grant's: one attempt, an OAuth error
// answer is an *IdPError, a transport fault, 429 or 5xx wraps
// ErrUnavailable, a redirect wraps ErrRedirect, and no error carries the
// code, the verifier, a secret of the answer or the answer's body.
func (p *Provider) ExchangeCode(ctx context.Context, code, redirectURI, verifier string) (TokenResponse, error) {
	const op = "code exchange"
	endpoint, err := p.endpoint(op, "token endpoint", p.md.TokenEndpoint)
	if err != nil {
		return TokenResponse{}, err
	}
	if err := CheckEndpointURL(op+": endpoint", endpoint); err != nil {
		return TokenResponse{}, err
	}
	cfg := oauth2.Config{
		ClientID:     p.acct.ClientID,
		ClientSecret: p.acct.ClientSecret.Reveal(),
		Endpoint:     oauth2.Endpoint{TokenURL: endpoint, AuthStyle: authStyle(p.acct)},
		RedirectURL:  redirectURI,
	}
	// x/oauth2 sends its requests with the client of this context value:
	// ours, with its timeouts, CA bundle and no redirects of a POST, and
	// its answers bounded by us (x/oauth2 would cut them at 1 MiB).
	octx := context.WithValue(ctx, oauth2.HTTPClient, boundedAnswers(p.client))
	tok, err := cfg.Exchange(octx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		secrets := url.Values{"code": {code}, "code_verifier": {verifier}, "client_secret": {p.acct.ClientSecret.Reveal()}}
		return TokenResponse{}, oauth2Error(ctx, op, err, secrets)
	}
	return tokenResponseOfOAuth2(tok), nil
}

// authStyle is the x/oauth2 form of the account's client authentication
// (https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1): a public client
// sends client_id in the form, as does client_secret_post with its secret.
func authStyle(a Account) oauth2.AuthStyle {
	if clientAuthOf(a) == ClientAuthBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// oauth2Error maps an error of x/oauth2 to the broker's: an
// *oauth2.RetrieveError to an *IdPError (wrapped in ErrUnavailable for 429
// and 5xx), a transport fault to ErrUnavailable, a refused redirect to its
// *RedirectError. The RetrieveError's own message quotes the answer's body
// and is never used; nothing of secrets survives.
func oauth2Error(ctx context.Context, op string, err error, secrets url.Values) error {
	var re *oauth2.RetrieveError
	var redir *RedirectError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		ie := newIdPError(op, status, re.ErrorCode, re.ErrorDescription, secrets)
		if status == http.StatusTooManyRequests || status >= 500 {
			return fmt.Errorf("%w: %w", ErrUnavailable, ie)
		}
		return ie
	case errors.As(err, &redir):
		return fmt.Errorf("%s: %w", op, redir)
	case errors.Is(err, errAnswerTooLarge):
		return fmt.Errorf("%s: %w", op, errAnswerTooLarge)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", op, ctx.Err())
	case errors.As(err, &ue):
		// The *url.Error names the endpoint, which holds no secret (forms
		// travel in the body).
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, ue)
	}
	// The answer came but did not parse (x/oauth2 says why, never quoting
	// the body); scrub anyway.
	msg := err.Error()
	for _, vs := range secrets {
		for _, v := range vs {
			if len(v) >= 4 {
				msg = strings.ReplaceAll(msg, v, redacted)
			}
		}
	}
	return fmt.Errorf("%s: malformed token response: %s", op, msg)
}

// tokenResponseOfOAuth2 is the TokenResponse of an x/oauth2 token, with
// the fields x/oauth2 keeps in Extra: id_token, scope and Keycloak's
// refresh_expires_in.
func tokenResponseOfOAuth2(t *oauth2.Token) TokenResponse {
	str := func(k string) string { s, _ := t.Extra(k).(string); return s }
	return TokenResponse{
		AccessToken:      Secret(t.AccessToken),
		TokenType:        t.TokenType,
		RefreshToken:     Secret(t.RefreshToken),
		IDToken:          Secret(str("id_token")),
		ExpiresIn:        time.Duration(t.ExpiresIn) * time.Second,
		RefreshExpiresIn: extraSeconds(t.Extra("refresh_expires_in")),
		Scopes:           strings.Fields(str("scope")),
	}
}

// extraSeconds reads a number of seconds x/oauth2 decoded into Extra: a
// JSON number (float64) or a numeric string, which some IdPs send. Anything
// else, negative or absurd, is zero (not sent).
func extraSeconds(v any) time.Duration {
	var s seconds
	switch v := v.(type) {
	case float64:
		if s.UnmarshalJSON([]byte(fmt.Sprint(v))) != nil {
			return 0
		}
	case string:
		if s.UnmarshalJSON([]byte(v)) != nil {
			return 0
		}
	}
	return time.Duration(s) * time.Second
}
