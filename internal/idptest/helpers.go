package idptest

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
)

// LoginRedirectURI is the redirect URI Login uses (on ProfileNextcloudOIDC,
// which registers localhost only, http://localhost/callback).
const LoginRedirectURI = "http://127.0.0.1/callback"

func (s *Server) loginRedirect() string {
	if s.opts.Profile == ProfileNextcloudOIDC {
		return "http://localhost/callback"
	}
	return LoginRedirectURI
}

// Tokens is a token response. Its fields are credentials: they must not
// be logged.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	// ExpiresIn is the access token lifetime in seconds.
	ExpiresIn int
	// Scope is the granted scope, space-separated.
	Scope string
}

// tokenResponse is the JSON of a successful token response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// noRedirectClient returns an HTTP client that trusts the server and
// returns redirects instead of following them.
func (s *Server) noRedirectClient() *http.Client {
	c := *s.ts.Client()
	c.Timeout = 10 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Login signs in over HTTP as a client would: an authorization request
// with PKCE (S256), state and nonce to LoginRedirectURI, then the code
// exchange, authenticating as clientID's registered method. scopes default
// to "openid offline_access". It fails t on any error. Login's requests
// count in Calls("authorization_code") and Authorizations.
func (s *Server) Login(t testing.TB, clientID string, scopes ...string) Tokens {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"openid", "offline_access"}
	}
	verifier := randomHex(32)
	sum := sha256.Sum256([]byte(verifier))
	state := randomHex(16)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {s.loginRedirect()},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"nonce":                 {randomHex(16)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	hc := s.noRedirectClient()
	resp, err := hc.Get(s.endpoint("authorize") + "?" + q.Encode())
	if err != nil {
		t.Fatalf("idptest: login: authorization request: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idptest: login: authorization response: status %d, location error %v", resp.StatusCode, err)
	}
	back := loc.Query()
	if e := back.Get("error"); e != "" {
		t.Fatalf("idptest: login: authorization error %q: %s", e, back.Get("error_description"))
	}
	if got := back.Get("state"); got != state {
		t.Fatalf("idptest: login: got state %q, want %q", got, state)
	}

	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {back.Get("code")},
		"redirect_uri":  {s.loginRedirect()},
		"code_verifier": {verifier},
	}
	tr, err := s.postToken(clientID, form)
	if err != nil {
		t.Fatalf("idptest: login: %v", err)
	}
	return Tokens(tr)
}

// postToken sends a token request authenticated as clientID.
func (s *Server) postToken(clientID string, form url.Values) (tokenResponse, error) {
	var basicSecret string
	switch clientID {
	case ConfidentialClientID:
		basicSecret = s.ConfidentialSecret
	case PostClientID:
		form.Set("client_id", clientID)
		form.Set("client_secret", s.PostSecret)
	default:
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequest(http.MethodPost, s.endpoint("token"), strings.NewReader(form.Encode()))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicSecret != "" {
		// https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1: id and
		// secret are form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(basicSecret))
	}
	resp, err := s.noRedirectClient().Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return tokenResponse{}, &TokenError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return tokenResponse{}, errors.New("token response: undecodable JSON")
	}
	return tr, nil
}

// TokenError is an error answer of the token endpoint.
type TokenError struct {
	Status      int
	Code        string // RFC 6749 §5.2 "error"
	Description string
}

// Error implements error; it carries no token or secret.
func (e *TokenError) Error() string {
	return "token endpoint: " + e.Code + ": " + e.Description
}

// Key returns the private key that signs ID tokens and MintJWT tokens.
func (s *Server) Key() *rsa.PrivateKey { return s.key }

// KeyID returns the kid of Key in the JWKS.
func (s *Server) KeyID() string { return s.kid }

// MintJWT signs claims exactly as given with RS256, Key and KeyID, e.g. a
// subject token for token exchange (which wants iss = Issuer(), exp, sub
// and a "scope" claim). It fails t on error.
func (s *Server) MintJWT(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatalf("idptest: mint jwt: %v", err)
	}
	return signed
}

// CAPEM returns the PEM certificate that clients must trust to reach the
// server with Options.TLS, or nil without it.
func (s *Server) CAPEM() []byte {
	cert := s.ts.Certificate()
	if cert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// TokenInfo is what the server knows about a token.
type TokenInfo struct {
	// Active is false for unknown, expired, revoked and used tokens; the
	// other fields are then empty.
	Active bool
	// Use is "access_token" or "refresh_token".
	Use       string
	Subject   string
	ClientID  string
	Scopes    []string
	Audience  []string
	ExpiresAt time.Time
	// Extra holds extra claims, e.g. "act" of a delegated token exchange:
	// map[string]any{"sub": actor}.
	Extra map[string]any
}

// Inspect looks token up in the server's storage, as introspection does
// (access tokens first, then refresh tokens).
func (s *Server) Inspect(token string) TokenInfo {
	use, ar, err := s.provider.IntrospectToken(context.Background(), token, fosite.AccessToken, newSession("", s.URL, s.kid))
	if err != nil {
		return TokenInfo{}
	}
	info := TokenInfo{
		Active:    true,
		Use:       string(use),
		Subject:   ar.GetSession().GetSubject(),
		ClientID:  ar.GetClient().GetID(),
		Scopes:    append([]string(nil), ar.GetGrantedScopes()...),
		Audience:  append([]string(nil), ar.GetGrantedAudience()...),
		ExpiresAt: ar.GetSession().GetExpiresAt(fosite.TokenType(use)),
	}
	if sess, ok := ar.GetSession().(*session); ok && len(sess.Extra) > 0 {
		info.Extra = make(map[string]any, len(sess.Extra))
		for k, v := range sess.Extra {
			info.Extra[k] = v
		}
	}
	return info
}

// Introspect reports whether token is an active access or refresh token of
// this server, with its granted scopes and audience.
func (s *Server) Introspect(token string) (active bool, scopes []string, aud []string) {
	info := s.Inspect(token)
	return info.Active, info.Scopes, info.Audience
}

// RefreshTokenActive reports whether refresh is a refresh token that can
// still be used: not expired, rotated, revoked or part of a revoked grant.
func (s *Server) RefreshTokenActive(refresh string) bool {
	use, _, err := s.provider.IntrospectToken(context.Background(), refresh, fosite.RefreshToken, newSession("", s.URL, s.kid))
	return err == nil && use == fosite.RefreshToken
}

// Refresh sends a refresh grant for refresh as clientID, with scope
// joined from scopes when given. It returns a *TokenError when the server
// refuses. Tests use it to play a second user of a refresh token.
func (s *Server) Refresh(clientID, refresh string, scopes ...string) (Tokens, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	tr, err := s.postToken(clientID, form)
	return Tokens(tr), err
}

// Expire makes token, an active access or refresh token of this server,
// expire now, as if its lifespan had passed, so tests need not wait. It
// reports whether it found such a token.
func (s *Server) Expire(token string) bool {
	s.tokenMu.Lock() // no refresh interleaves
	defer s.tokenMu.Unlock()
	ctx := context.Background()
	past := time.Now().UTC().Add(-time.Second)
	sig := s.access.AccessTokenSignature(ctx, token)
	if ar, err := s.store.GetAccessTokenSession(ctx, sig, nil); err == nil {
		if r, ok := expiredCopy(ar, fosite.AccessToken, past); ok {
			return s.store.CreateAccessTokenSession(ctx, sig, r) == nil
		}
	}
	sig = s.access.RefreshTokenSignature(ctx, token)
	if ar, err := s.store.GetRefreshTokenSession(ctx, sig, nil); err == nil {
		if r, ok := expiredCopy(ar, fosite.RefreshToken, past); ok {
			return s.store.CreateRefreshTokenSession(ctx, sig, "", r) == nil
		}
	}
	return false
}

// expiredCopy returns a copy of ar whose token of type typ expires at at;
// the stored session is shared with other tokens and is not modified.
func expiredCopy(ar fosite.Requester, typ fosite.TokenType, at time.Time) (fosite.Requester, bool) {
	r, ok := ar.Sanitize(nil).(*fosite.Request)
	if !ok || r.Session == nil {
		return nil, false
	}
	r.Session = r.Session.Clone()
	r.Session.SetExpiresAt(typ, at)
	return r, true
}
