package agent

// Sign-in flows: the common request and result types, their sentinel errors,
// ID token verification and the choice of a method for a bare --server.
// The flows themselves live in signin_browser.go (RFC 8252 authorization
// code + PKCE), signin_device.go (RFC 8628 device authorization grant) and
// signin_loginflow.go (Nextcloud Login Flow v2 app passwords).
//
// None of these functions logs. Secrets (codes, verifiers, refresh and
// access tokens, ID tokens, device codes, poll tokens, app passwords) never
// reach an error, a progress event or a page shown in the browser.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// Sign-in methods, as in ipc.LoginRequest.Method.
const (
	MethodBrowser     = "browser"
	MethodDevice      = "device"
	MethodAppPassword = "app-password"
)

// Default time limits of a sign-in.
const (
	// DefaultSignInTimeout bounds the browser and device flows.
	DefaultSignInTimeout = 5 * time.Minute
	// DefaultLoginFlowTimeout bounds Login Flow v2: Nextcloud keeps a login
	// flow token for 20 minutes.
	DefaultLoginFlowTimeout = 20 * time.Minute
)

// Sentinel errors of the sign-in flows. The agent maps them to wire errors.
var (
	// ErrSignInTimeout: the sign-in was abandoned (the browser never came
	// back, the device code or login flow expired). Running the login again
	// is the fix.
	ErrSignInTimeout = errors.New("sign-in was not completed in time: run the login again")
	// ErrSignInDenied: the user or the identity provider refused the
	// authorization (RFC 6749 access_denied). Errors wrapping it also wrap
	// a *broker.IdPError carrying the IdP's error and description.
	ErrSignInDenied = errors.New("sign-in was denied")
	// ErrNoRefreshToken: the identity provider issued tokens but no refresh
	// token, so the agent could not keep the account signed in. This is a
	// failed sign-in.
	ErrNoRefreshToken = errors.New("the identity provider returned no refresh token")
	// ErrSignInState: the authorization response failed the state, nonce or
	// issuer check. Someone may be trying to slip their own authorization
	// into this sign-in; nothing was kept.
	ErrSignInState = errors.New("sign-in response failed the state, nonce or issuer check (a possible attack; nothing was kept)")
	// ErrIDToken: the ID token failed verification (signature, issuer,
	// audience, expiry). Usually a misconfigured issuer URL or client id.
	ErrIDToken = errors.New("id token rejected")
	// ErrNoBrowser: OpenURL found no way to open a browser here.
	ErrNoBrowser = errors.New("no way to open a browser")
)

// signInRequest is everything one sign-in needs. Its secrets (ClientSecret)
// redact themselves and are never logged.
type signInRequest struct {
	Account      string
	Method       string            // MethodBrowser, MethodDevice or MethodAppPassword
	Server       string            // Nextcloud base URL
	Issuer       string            // OIDC issuer; empty: Metadata.Issuer, else Server
	ClientID     string            // OIDC client id
	ClientSecret broker.Secret     // confidential clients only
	ClientAuth   broker.ClientAuth // default: none without ClientSecret, else client_secret_basic
	Scopes       []string          // requested; openid and offline_access are added for oidc
	Metadata     broker.Metadata   // discovered endpoints (oidc methods)
	HTTP         *http.Client      // from broker.NewHTTPClient (CA bundle, User-Agent, no redirects on POSTs)
	RedirectHost string            // "localhost" (default) or "127.0.0.1"
	Timeout      time.Duration     // default 5 min for browser/device, 20 min for app-password
	Progress     func(ipc.LoginEvent)
	Now          func() time.Time // default time.Now

	// sleep waits d or until ctx is done (the device and login flow poll
	// intervals); tests make it advance a fake clock instead. Default:
	// a real timer.
	sleep func(ctx context.Context, d time.Duration) error
	// hostname names this machine in the Login Flow v2 User-Agent;
	// default os.Hostname.
	hostname func() (string, error)
}

// signInResult is a successful sign-in. Secret and Initial are secrets: the
// caller stores Secret through broker.SignedIn and never logs either.
type signInResult struct {
	Kind          broker.Kind
	Secret        broker.Secret // refresh token (oidc) or app password
	Initial       *broker.Token // the access token obtained with it (oidc), or nil
	RefreshExpiry time.Time     // from refresh_expires_in, when sent; zero otherwise
	Server        string
	Issuer        string
	// Username is the name the account is known by: for oidc the ID token's
	// preferred_username (else sub); for app-password the Login Flow v2
	// loginName, which Nextcloud requires in Basic auth together with the
	// app password (it may differ from the user id, e.g. an e-mail login).
	Username    string
	UserID      string // app-password: the Nextcloud user id (ocs data.id); oidc: sub
	DisplayName string
	Scopes      []string // granted
}

// withDefaults fills the defaults of r for a sign-in with the given default
// timeout and checks what every flow needs.
func (r signInRequest) withDefaults(defTimeout time.Duration) (signInRequest, error) {
	if r.Progress == nil {
		return r, errors.New("sign-in: no progress callback")
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Timeout <= 0 {
		r.Timeout = defTimeout
	}
	if r.sleep == nil {
		r.sleep = sleepCtx
	}
	if r.hostname == nil {
		r.hostname = os.Hostname
	}
	if r.HTTP == nil {
		c, err := broker.NewHTTPClient(broker.HTTPOptions{})
		if err != nil {
			return r, fmt.Errorf("sign-in: http client: %w", err)
		}
		r.HTTP = c
	}
	if r.ClientAuth == "" {
		r.ClientAuth = broker.ClientAuthNone
		if r.ClientSecret != "" {
			r.ClientAuth = broker.ClientAuthBasic
		}
	}
	return r, nil
}

// issuer is the issuer identifier ID tokens and RFC 9207 iss parameters are
// compared against: the discovered one, else the configured one.
func (r signInRequest) issuer() string {
	switch {
	case r.Metadata.Issuer != "":
		return r.Metadata.Issuer
	case r.Issuer != "":
		return r.Issuer
	}
	return r.Server
}

// progress reports ev with the account filled in.
func (r signInRequest) progress(ev ipc.LoginEvent) {
	ev.Account = r.Account
	if ev.Method == "" {
		ev.Method = r.Method
	}
	r.Progress(ev)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// oidcScopes returns the requested scopes plus openid and offline_access,
// in order and without duplicates.
func oidcScopes(requested []string) []string {
	out := make([]string, 0, len(requested)+2)
	for _, s := range append([]string{"openid"}, append(slices.Clone(requested), "offline_access")...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// equalSecret compares two values in constant time.
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// maxResponseBytes bounds every response body read from an IdP or server.
const maxResponseBytes = 1 << 20

// readBody reads at most maxResponseBytes of resp's body.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return b, nil
}

// idpError builds a *broker.IdPError from an OAuth 2.0 error response body
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.2). A body that is not
// such an error gives code "server_error" with the HTTP status. The body
// itself never goes into the error.
func idpError(op string, status int, body []byte) *broker.IdPError {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error == "" {
		e.Error = "server_error"
		e.Description = fmt.Sprintf("unexpected answer (HTTP %d)", status)
	}
	return &broker.IdPError{Op: op, StatusCode: status, Code: e.Error, Description: printable(e.Description, 300)}
}

// printable trims s to at most n bytes of printable text, for messages that
// quote what a server said.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// unavailable wraps a transport error of op as broker.ErrUnavailable.
// Transport errors name the URL (never a query: no secret travels in one
// here) but never a body.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, broker.ErrUnavailable, err)
}

// setClientAuth authenticates a token-endpoint style request as r's client
// (https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1): client_secret_basic
// puts the form-urlencoded id and secret in HTTP Basic; client_secret_post
// and public clients send client_id (and client_secret) in the form.
func setClientAuth(req *http.Request, form url.Values, r signInRequest) {
	switch r.ClientAuth {
	case broker.ClientAuthBasic:
		req.SetBasicAuth(url.QueryEscape(r.ClientID), url.QueryEscape(r.ClientSecret.Reveal()))
	case broker.ClientAuthPost:
		form.Set("client_id", r.ClientID)
		form.Set("client_secret", r.ClientSecret.Reveal())
	default:
		form.Set("client_id", r.ClientID)
	}
}

// postForm POSTs form to endpoint as r's client and returns the status and
// body. It authenticates the client with setClientAuth.
func postForm(ctx context.Context, r signInRequest, endpoint string, form url.Values, clientAuth bool) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, nil, err
	}
	if clientAuth {
		setClientAuth(req, form, r)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// tokenResponse is a successful token endpoint response
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.1) with the OpenID
// Connect id_token and Keycloak's refresh_expires_in.
type tokenResponse struct {
	AccessToken      string      `json:"access_token"`
	TokenType        string      `json:"token_type"`
	RefreshToken     string      `json:"refresh_token"`
	ExpiresIn        json.Number `json:"expires_in"`
	RefreshExpiresIn json.Number `json:"refresh_expires_in"`
	Scope            string      `json:"scope"`
	IDToken          string      `json:"id_token"`
}

// seconds returns n as whole seconds, 0 when absent or not a positive number.
func seconds(n json.Number) int64 {
	f, err := n.Float64()
	if err != nil || f <= 0 || f > 1<<40 {
		return 0
	}
	return int64(f)
}

// finishOIDC turns a token response into a signInResult: it verifies the
// ID token (required when nonce is set, and then its nonce must match),
// insists on a refresh token, and fills user and scope details.
func finishOIDC(ctx context.Context, r signInRequest, tr tokenResponse, nonce string, op string) (signInResult, error) {
	if tr.AccessToken == "" {
		return signInResult{}, fmt.Errorf("%s: token response carries no access_token", op)
	}
	now := r.Now()
	var claims idClaims
	switch {
	case tr.IDToken != "":
		c, err := verifyIDToken(ctx, r, tr.IDToken, nonce)
		if err != nil {
			return signInResult{}, fmt.Errorf("%s: %w", op, err)
		}
		claims = c
	case nonce != "":
		// https://openid.net/specs/openid-connect-core-1_0.html#TokenResponse:
		// a successful token response to an openid request carries an
		// id_token. Without it the nonce cannot be checked.
		return signInResult{}, fmt.Errorf("%s: token response carries no id_token, so the nonce cannot be checked: %w", op, ErrSignInState)
	default:
		c, err := userinfo(ctx, r, tr.AccessToken)
		if err != nil {
			return signInResult{}, fmt.Errorf("%s: %w", op, err)
		}
		claims = c
	}
	if tr.RefreshToken == "" {
		return signInResult{}, fmt.Errorf("%s: %w: allow offline access (offline_access) for client %q", op, ErrNoRefreshToken, r.ClientID)
	}
	granted := strings.Fields(tr.Scope)
	if len(granted) == 0 {
		// https://www.rfc-editor.org/rfc/rfc6749#section-5.1: scope is
		// "OPTIONAL, if identical to the scope requested by the client".
		granted = oidcScopes(r.Scopes)
	}
	tokenType := tr.TokenType
	if tokenType == "" || strings.EqualFold(tokenType, "bearer") {
		tokenType = "Bearer"
	}
	username := claims.PreferredUsername
	if username == "" {
		username = claims.Subject
	}
	res := signInResult{
		Kind:        broker.KindOIDC,
		Secret:      broker.Secret(tr.RefreshToken),
		Server:      r.Server,
		Issuer:      r.issuer(),
		Username:    username,
		UserID:      claims.Subject,
		DisplayName: claims.Name,
		Scopes:      granted,
		Initial: &broker.Token{
			Account:     r.Account,
			TokenType:   tokenType,
			AccessToken: broker.Secret(tr.AccessToken),
			Scopes:      granted,
			Username:    username,
			Server:      r.Server,
		},
	}
	if s := seconds(tr.ExpiresIn); s > 0 {
		res.Initial.Expiry = now.Add(time.Duration(s) * time.Second)
	}
	if s := seconds(tr.RefreshExpiresIn); s > 0 {
		res.RefreshExpiry = now.Add(time.Duration(s) * time.Second)
	}
	return res, nil
}

// idClaims are the ID token claims the agent uses.
type idClaims struct {
	Subject           string
	PreferredUsername string
	Name              string
}

// allowedIDTokenAlgs are the ID token signature algorithms accepted:
// asymmetric only. "none" and HMAC (keyed with the client secret, which a
// public client does not have) are refused.
var allowedIDTokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// idTokenLeeway is the clock skew tolerated on exp, iat and nbf.
const idTokenLeeway = time.Minute

// verifyIDToken checks an ID token as
// https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
// asks: the signature against the issuer's JWKS with an asymmetric
// algorithm, iss equal to the issuer, aud containing the client id (azp,
// when present, equal to it), exp in the future. When nonce is not empty
// the token's nonce must equal it ("If a nonce value was sent in the
// Authentication Request, a nonce Claim MUST be present and its value
// checked to verify that it is the same value as the one that was sent");
// a missing or different nonce is ErrSignInState. Other failures wrap
// ErrIDToken.
func verifyIDToken(ctx context.Context, r signInRequest, raw, nonce string) (idClaims, error) {
	var keys []jwk
	var keysErr error
	fetched := false
	keyfunc := func(t *jwt.Token) (any, error) {
		if !fetched {
			fetched = true
			keys, keysErr = fetchJWKS(ctx, r)
		}
		if keysErr != nil {
			return nil, keysErr
		}
		kid, _ := t.Header["kid"].(string)
		return pickKey(keys, kid, t.Method.Alg())
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, keyfunc,
		jwt.WithValidMethods(allowedIDTokenAlgs),
		jwt.WithIssuer(r.issuer()),
		jwt.WithAudience(r.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(idTokenLeeway),
		jwt.WithTimeFunc(r.Now),
	)
	if err != nil {
		if keysErr != nil {
			return idClaims{}, fmt.Errorf("verify id token: %w", keysErr)
		}
		// jwt/v5 errors name the failed check, never the token or a claim value.
		return idClaims{}, fmt.Errorf("verify id token: %w: %w", ErrIDToken, err)
	}
	// https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
	// "If an azp (authorized party) Claim is present, the Client SHOULD
	// verify that its client_id is the Claim Value."
	if azp, ok := claims["azp"].(string); ok && azp != "" && azp != r.ClientID {
		return idClaims{}, fmt.Errorf("verify id token: %w: authorized party (azp) is not client %q", ErrIDToken, r.ClientID)
	}
	if nonce != "" {
		got, _ := claims["nonce"].(string)
		switch {
		case got == "":
			return idClaims{}, fmt.Errorf("verify id token: no nonce: %w", ErrSignInState)
		case !equalSecret(got, nonce):
			return idClaims{}, fmt.Errorf("verify id token: nonce does not match this sign-in: %w", ErrSignInState)
		}
	}
	var c idClaims
	c.Subject, _ = claims["sub"].(string)
	c.PreferredUsername, _ = claims["preferred_username"].(string)
	c.Name, _ = claims["name"].(string)
	if c.Subject == "" {
		return idClaims{}, fmt.Errorf("verify id token: %w: no subject (sub)", ErrIDToken)
	}
	return c, nil
}

// jwk is one JSON Web Key (https://www.rfc-editor.org/rfc/rfc7517) in
// parsed form.
type jwk struct {
	kid, use, alg string
	key           crypto.PublicKey
}

// fetchJWKS fetches and parses the issuer's JSON Web Key Set. Keys of
// unknown types are skipped.
func fetchJWKS(ctx context.Context, r signInRequest) ([]jwk, error) {
	if r.Metadata.JWKSURI == "" {
		return nil, errors.New("jwks: the issuer's metadata names no jwks_uri")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Metadata.JWKSURI, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, unavailable("jwks", err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("jwks: read %s: %w", r.Metadata.JWKSURI, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: GET %s: HTTP %d", r.Metadata.JWKSURI, resp.StatusCode)
	}
	return parseJWKS(body)
}

// parseJWKS parses a JWK Set document. RSA keys of at least 2048 bits, EC
// keys on P-256, P-384 and P-521, and Ed25519 keys are kept; others are
// skipped. A document with no usable key is an error.
func parseJWKS(body []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	b64 := base64.RawURLEncoding
	var keys []jwk
	for _, k := range set.Keys {
		var pub crypto.PublicKey
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
				continue
			}
			exp := new(big.Int).SetBytes(e)
			mod := new(big.Int).SetBytes(n)
			if mod.BitLen() < 2048 || exp.Int64() < 3 {
				continue
			}
			pub = &rsa.PublicKey{N: mod, E: int(exp.Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			size := (curve.Params().BitSize + 7) / 8
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				continue
			}
			p, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
			if err != nil {
				continue // not on the curve
			}
			pub = p
		case "OKP":
			x, err := b64.DecodeString(k.X)
			if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			pub = ed25519.PublicKey(x)
		default:
			continue
		}
		keys = append(keys, jwk{kid: k.Kid, use: k.Use, alg: k.Alg, key: pub})
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable signing key")
	}
	return keys, nil
}

// pickKey returns the signing key for a token with key id kid and
// algorithm alg: the key with that kid, or without a kid the only key of a
// type fitting alg.
func pickKey(keys []jwk, kid, alg string) (any, error) {
	var found []jwk
	for _, k := range keys {
		if k.use != "" && k.use != "sig" {
			continue
		}
		if k.alg != "" && k.alg != alg {
			continue
		}
		if !keyFits(k.key, alg) {
			continue
		}
		if kid != "" && k.kid != kid {
			continue
		}
		found = append(found, k)
	}
	switch {
	case len(found) == 1:
		return found[0].key, nil
	case len(found) == 0 && kid != "":
		return nil, fmt.Errorf("%w: no %s key with id %q in the issuer's JWKS", ErrIDToken, alg, kid)
	case len(found) == 0:
		return nil, fmt.Errorf("%w: no %s key in the issuer's JWKS", ErrIDToken, alg)
	}
	return nil, fmt.Errorf("%w: the token names no key id and the issuer's JWKS has several %s keys", ErrIDToken, alg)
}

// keyFits reports whether key can verify alg signatures.
func keyFits(key crypto.PublicKey, alg string) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// userinfo asks the userinfo endpoint who the access token belongs to
// (https://openid.net/specs/openid-connect-core-1_0.html#UserInfo); it is
// used when a token response carries no ID token. Without an endpoint the
// user stays unknown.
func userinfo(ctx context.Context, r signInRequest, accessToken string) (idClaims, error) {
	if r.Metadata.UserinfoEndpoint == "" {
		return idClaims{}, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Metadata.UserinfoEndpoint, nil)
	if err != nil {
		return idClaims{}, fmt.Errorf("userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return idClaims{}, unavailable("userinfo", err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return idClaims{}, fmt.Errorf("userinfo: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return idClaims{}, idpError("userinfo", resp.StatusCode, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		// A signed (application/jwt) userinfo response is not supported.
		return idClaims{}, fmt.Errorf("userinfo: unexpected content type %q", mt)
	}
	var c struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
		Name              string `json:"name"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return idClaims{}, fmt.Errorf("userinfo: decode: %w", err)
	}
	return idClaims{Subject: c.Sub, PreferredUsername: c.PreferredUsername, Name: c.Name}, nil
}

// discoveryTimeout bounds chooseMethod's discovery request.
const discoveryTimeout = 5 * time.Second

// chooseMethod picks a sign-in method for a bare --server: MethodBrowser
// when OpenID Connect discovery at issuer (else server) works and a client
// id is known, otherwise MethodAppPassword. reason says which and why, in
// words for the user. It never fails: a discovery error only steers the
// choice (and is named in reason).
func chooseMethod(ctx context.Context, client *http.Client, server, issuer, clientID string) (method, reason string) {
	base := issuer
	if base == "" {
		base = server
	}
	where := strings.TrimRight(base, "/") + "/.well-known/openid-configuration"
	err := probeDiscovery(ctx, client, where)
	switch {
	case err == nil && clientID != "":
		return MethodBrowser, fmt.Sprintf("%s offers OpenID Connect and client %q is configured: signing in through the browser", hostOf(base), clientID)
	case err == nil:
		return MethodAppPassword, fmt.Sprintf("%s offers OpenID Connect, but no client id is configured: using a Nextcloud app password (Login Flow v2); "+
			"for OpenID Connect, register a public client on the server (occ oidc:create ncagent 'http://localhost:*' --type=public) and log in again with --client-id", hostOf(base))
	}
	return MethodAppPassword, fmt.Sprintf("no OpenID Connect discovery at %s (%v): using a Nextcloud app password (Login Flow v2), which works on every stock Nextcloud", where, err)
}

// probeDiscovery GETs an OpenID Provider discovery document and checks it
// names an issuer, an authorization endpoint and a token endpoint.
func probeDiscovery(ctx context.Context, client *http.Client, where string) error {
	if client == nil {
		c, err := broker.NewHTTPClient(broker.HTTPOptions{Timeout: discoveryTimeout})
		if err != nil {
			return err
		}
		client = c
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return fmt.Errorf("bad url: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errors.New("no answer in time")
		}
		return errors.New("server unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("HTTP " + strconv.Itoa(resp.StatusCode))
	}
	body, err := readBody(resp)
	if err != nil {
		return err
	}
	var md broker.Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return errors.New("not a discovery document")
	}
	if md.Issuer == "" || md.AuthorizationEndpoint == "" || md.TokenEndpoint == "" {
		return errors.New("incomplete discovery document")
	}
	return nil
}

// hostOf returns the host of a URL, or the URL itself when it has none.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}

// checkSecureURL accepts https URLs and http URLs on a loopback host:
// credentials are never sent in clear text over a network.
func checkSecureURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return fmt.Errorf("%s %q: want an https URL (http only on a loopback host)", what, r.String())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
