package broker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/untrusted"
)

const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	defaultExchangeAud  = "nextcloud"
	subjectLeeway       = 30 * time.Second
	jwksMinRefetch      = time.Minute
	defaultSubjectAudMC = "mcp-server"
)

// Exchange returns a session token by RFC 8693 token exchange of the
// client's subject token (https://www.rfc-editor.org/rfc/rfc8693#section-2.1).
// A subject token shaped like a JWT is verified locally first (signature
// against the issuer's JWKS, iss, exp, aud in AcceptedAudiences, alg in
// AllowedAlgs); a rejected one fails with an error wrapping ErrSubjectToken
// and never reaches the IdP. Opaque subject tokens are sent as they are.
//
// Exchange does not use or change the refresh chain. Session tokens are
// not cached unless the account sets CacheExchanged (then they are keyed by
// a SHA-256 of subject token, audience and scopes). When the IdP rejects
// the subject token the error is returned; only with
// ExchangeFallbackRefresh and an unsupported_grant_type answer is a
// background token served instead.
//
// App-password accounts answer with their Basic credential. Exchange is
// safe for concurrent use; the returned token must not be logged.
func (b *Broker) Exchange(ctx context.Context, req ExchangeRequest) (Token, error) {
	a := b.get(req.Account)
	if a == nil {
		return Token{}, unknownAccount(req.Account)
	}
	a.mu.RLock()
	cfg, early := a.cfg, a.early
	a.mu.RUnlock()
	if cfg.Kind == KindAppPassword {
		return b.Token(ctx, TokenRequest{Account: req.Account})
	}
	fail := func(err error) (Token, error) { return Token{}, &AccountError{Account: a.name, Err: err} }
	subject := req.SubjectToken.Reveal()
	if subject == "" {
		return fail(fmt.Errorf("exchange: %w: empty subject token", ErrSubjectToken))
	}
	if len(subject) > maxSubjectToken || len(req.ActorToken) > maxSubjectToken {
		return fail(fmt.Errorf("exchange: %w: token too large", ErrSubjectToken))
	}
	subjectType := req.SubjectTokenType
	if subjectType == "" {
		subjectType = tokenTypeAccess
	}
	aud := req.Audience
	if aud == "" {
		aud = cfg.Audience
	}
	if aud == "" {
		aud = defaultExchangeAud
	}
	scopes := sortedScopes(req.Scopes)

	var key [32]byte
	if cfg.CacheExchanged {
		key = exchangeKey(subject, aud, scopes)
		a.mu.RLock()
		t, ok := a.exchanged[key]
		a.mu.RUnlock()
		if ok && t.Valid(b.now(), early) {
			return t, nil
		}
	}
	if looksLikeJWT(subject) {
		if err := b.verifySubject(ctx, cfg, subject); err != nil {
			b.log.Info("subject token rejected", "account", a.name, "err", err.Error())
			return fail(fmt.Errorf("exchange: %w", err))
		}
	}

	// https://www.rfc-editor.org/rfc/rfc8693#section-2.1: grant_type
	// REQUIRED, resource/audience OPTIONAL, scope OPTIONAL, subject_token
	// and subject_token_type REQUIRED; actor_token OPTIONAL, and
	// "actor_token_type ... REQUIRED when the actor_token parameter is
	// present in the request but MUST NOT be included otherwise."
	form := url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {subjectType},
		"audience":           {aud},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	addExchangeParams(form, cfg.ExchangeParams)
	if req.ActorToken != "" {
		at := req.ActorTokenType
		if at == "" {
			at = tokenTypeAccess
		}
		form.Set("actor_token", req.ActorToken.Reveal())
		form.Set("actor_token_type", at)
	}
	b.log.Debug("exchange", "account", a.name, "audience", aud, "scopes", scopes, "delegation", req.ActorToken != "")
	var body []byte
	err := b.offersExchange(ctx, cfg)
	if err == nil {
		err = b.withRetry(ctx, "exchange", func() error {
			endpoint, err := b.tokenEndpoint(ctx, cfg)
			if err != nil {
				return err
			}
			body, err = b.postForm(ctx, "exchange", cfg, endpoint, cloneValues(form))
			return err
		})
	}
	if err != nil {
		var ie *IdPError
		if errors.As(err, &ie) && ie.Code == "unsupported_grant_type" && cfg.ExchangeFallbackRefresh {
			b.log.Info("identity provider does not support token exchange: serving a background token", "account", a.name)
			return b.Token(ctx, TokenRequest{Account: req.Account, Scopes: scopes, Audience: aud})
		}
		return fail(err)
	}
	tr, err := decodeTokenResponse("exchange", body)
	if err != nil {
		return fail(err)
	}
	// "token_type ... If the issued token is not an access token or usable
	// as an access token, then the token_type value N_A is used."
	// https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1
	tokenType := "Bearer"
	switch {
	case tr.TokenType == "" || strings.EqualFold(tr.TokenType, "bearer"):
	case tr.TokenType == "N_A":
		tokenType = "N_A"
	default:
		return fail(fmt.Errorf("exchange: unsupported token_type %q", untrusted.Text(tr.TokenType, 32)))
	}
	now := b.now()
	tok := issuedToken(a.name, cfg, tr, tokenType, aud, scopes, now)
	tok.IssuedTokenType = tr.IssuedTokenType
	if tok.IssuedTokenType == "" {
		tok.IssuedTokenType = tokenTypeAccess
	}
	if cfg.CacheExchanged {
		a.mu.Lock()
		if a.exchanged == nil {
			a.exchanged = map[[32]byte]Token{}
		}
		for k, t := range a.exchanged {
			if !t.Valid(now, 0) {
				delete(a.exchanged, k)
			}
		}
		a.exchanged[key] = tok
		a.mu.Unlock()
	}
	return tok, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// exchangeKey identifies a session token without holding the subject token.
func exchangeKey(subject, aud string, scopes []string) [32]byte {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write([]byte(aud))
	for _, s := range scopes {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verifySubject checks a JWT subject token against the account's issuer.
func (b *Broker) verifySubject(ctx context.Context, cfg Account, token string) error {
	md, err := b.Discover(ctx, cfg)
	if err != nil {
		return fmt.Errorf("verify subject token: %w", err)
	}
	issuer := md.Issuer
	if issuer == "" {
		issuer = cfg.Issuer
	}
	if md.JWKSURI == "" || issuer == "" {
		return fmt.Errorf("%w: the account has no issuer and JWKS to verify a JWT subject token against", ErrSubjectToken)
	}
	if err := CheckEndpointURL("jwks uri", md.JWKSURI); err != nil {
		return fmt.Errorf("verify subject token: %w", err)
	}
	c, err := b.jwksFor(cfg, md.JWKSURI)
	if err != nil {
		return fmt.Errorf("verify subject token: %w", err)
	}
	auds := cfg.AcceptedAudiences
	if len(auds) == 0 {
		auds = []string{defaultSubjectAudMC, cfg.ClientID}
	}
	algs := cfg.AllowedAlgs
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	_, err = c.verify(ctx, token, subjectPolicy{Issuer: issuer, Audiences: auds, Algs: algs, Leeway: subjectLeeway})
	return err
}

// jwksFor returns the shared JWKS cache of url.
func (b *Broker) jwksFor(cfg Account, url string) (*jwksCache, error) {
	client, err := b.clientFor(cfg.CAPEM)
	if err != nil {
		return nil, err
	}
	b.jwksMu.Lock()
	defer b.jwksMu.Unlock()
	c, ok := b.jwks[url]
	if !ok {
		c = newJWKSCache(client, url, b.now, jwksMinRefetch)
		b.jwks[url] = c
	}
	return c, nil
}

// rfc8693Params are the form fields of a token exchange request that RFC
// 8693 §2.1 and client authentication define; Account.ExchangeParams may
// not set them.
var rfc8693Params = []string{"grant_type", "resource", "audience", "scope", "requested_token_type",
	"subject_token", "subject_token_type", "actor_token", "actor_token_type", "client_id", "client_secret"}

// addExchangeParams adds a provider's extra exchange fields (Dex:
// connector_id, "REQUIRED, not in RFC" in dexidp/dex
// server/handlers.go handleTokenExchange) without replacing a field the
// RFC defines.
func addExchangeParams(form url.Values, extra map[string]string) {
	for k, v := range extra {
		if !slices.Contains(rfc8693Params, k) {
			form.Set(k, v)
		}
	}
}

// ValidateExchangeParams checks an account's exchange_params.
func ValidateExchangeParams(extra map[string]string) error {
	for k := range extra {
		if k == "" || slices.Contains(rfc8693Params, k) {
			return fmt.Errorf("exchange_params: %q is a field ncagent sets itself (RFC 8693 §2.1); only extra fields may be given", k)
		}
	}
	return nil
}

// offersExchange fails at once when the issuer's discovery document lists
// grant_types_supported without the token exchange grant: "JSON array
// containing a list of the OAuth 2.0 grant type values that this
// authorization server supports"
// (https://www.rfc-editor.org/rfc/rfc8414#section-2). A document without
// the field, or an account without an issuer, says nothing, and the
// request is sent.
func (b *Broker) offersExchange(ctx context.Context, cfg Account) error {
	if cfg.Issuer == "" {
		return nil
	}
	md, err := b.Discover(ctx, cfg)
	if err != nil {
		return err
	}
	if len(md.GrantTypesSupported) == 0 || slices.Contains(md.GrantTypesSupported, grantTokenExchange) {
		return nil
	}
	return &IdPError{Op: "exchange", Code: "unsupported_grant_type",
		Description: fmt.Sprintf("the identity provider does not offer token exchange: its discovery document lists grant types %s, not %s; "+
			"ask for a background token (ncagent token) instead, or use a provider that supports RFC 8693", strings.Join(md.GrantTypesSupported, ", "), grantTokenExchange)}
}
