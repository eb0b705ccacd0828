package broker

// The Provider's calls for the agent's OpenID Connect sign-in flows: token
// requests of any grant, the device authorization request, ID token
// verification and userinfo (the code exchange is in provider_code.go). The
// flows themselves (browser, device) belong to package agent; these calls
// share with the refresh and exchange paths the client authentication, IdP
// error parsing, the JWKS cache and the JWT checks.
//
// The device authorization request and the device token polls are written
// here rather than taken from golang.org/x/oauth2 (Config.DeviceAuth,
// Config.DeviceAccessToken), which does not do them right for us: DeviceAuth
// sends no client authentication, which
// https://www.rfc-editor.org/rfc/rfc8628#section-3.1 asks of a confidential
// client ("the client authentication requirements of Section 3.2.1 of
// [RFC6749] apply"), rejects a quoted expires_in (Keycloak-style numeric
// strings) and keeps the user code as sent, control characters included;
// DeviceAccessToken polls on a wall-clock ticker the agent's clock cannot
// drive, ends the flow at the first network fault or 5xx (we tolerate a few,
// RFC 8628 §3.5 leaves it to the client), and says nothing of which poll
// answered what.

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/internal/untrusted"
)

var (
	// ErrIDToken is wrapped by every error of VerifyIDToken that rejects
	// the token (signature, issuer, audience, expiry, nonce, ...), as
	// opposed to a JWKS that could not be fetched.
	ErrIDToken = errors.New("id token rejected")
	// ErrNonce is wrapped, together with ErrIDToken, when the ID token's
	// nonce is missing or is not the one of the authentication request: the
	// token may belong to another sign-in.
	ErrNonce = errors.New("id token nonce does not match this sign-in")
)

// idTokenLeeway is the clock skew tolerated on an ID token's exp, iat and
// nbf.
const idTokenLeeway = time.Minute

// TokenResponse is a successful token endpoint response
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.1) with the OpenID
// Connect id_token and Keycloak's refresh_expires_in. Its tokens are
// secrets.
type TokenResponse struct {
	AccessToken      Secret
	TokenType        string // as sent; may be empty
	RefreshToken     Secret // empty when none was issued
	IDToken          Secret // empty when none was issued; verify it with VerifyIDToken
	ExpiresIn        time.Duration
	RefreshExpiresIn time.Duration // zero when not sent
	// Scopes are the granted scopes as sent; nil when the response has no
	// scope, which https://www.rfc-editor.org/rfc/rfc6749#section-5.1
	// allows "if identical to the scope requested by the client".
	Scopes []string
}

// Grant sends one access token request (RFC 8628 §3.4 device code polls,
// or any other grant) to the token endpoint. form holds grant_type and the
// grant's parameters; Grant adds the client authentication of the account
// (https://www.rfc-editor.org/rfc/rfc6749#section-2.3) and leaves form
// itself unchanged. The authorization code grant has ExchangeCode.
//
// Grant makes one attempt: an authorization or device code is never sent
// twice on its own. An OAuth error answer is an *IdPError; a transport
// fault, HTTP 429 or 5xx wraps ErrUnavailable (an answer's *IdPError is
// still reachable with errors.As); a redirect wraps ErrRedirect; the end of
// ctx wraps ctx.Err(). No error carries a secret of the form or the answer.
func (p *Provider) Grant(ctx context.Context, form url.Values) (TokenResponse, error) {
	op := grantOp(form.Get("grant_type"))
	endpoint, err := p.endpoint(op, "token endpoint", p.md.TokenEndpoint)
	if err != nil {
		return TokenResponse{}, err
	}
	body, err := p.postForm(ctx, op, endpoint, cloneValues(form))
	if err != nil {
		return TokenResponse{}, untransient(err)
	}
	tr, err := decodeTokenResponse(op, body)
	if err != nil {
		return TokenResponse{}, err
	}
	return tokenResponseOf(tr), nil
}

// tokenResponseOf is the TokenResponse of a decoded token endpoint answer.
func tokenResponseOf(tr *tokenResponse) TokenResponse {
	return TokenResponse{
		AccessToken:      Secret(tr.AccessToken),
		TokenType:        tr.TokenType,
		RefreshToken:     Secret(tr.RefreshToken),
		IDToken:          Secret(tr.IDToken),
		ExpiresIn:        time.Duration(tr.ExpiresIn) * time.Second,
		RefreshExpiresIn: time.Duration(tr.RefreshExpiresIn) * time.Second,
		Scopes:           strings.Fields(tr.Scope),
	}
}

// grantOp names a token request in errors.
func grantOp(grantType string) string {
	switch grantType {
	case "authorization_code":
		return "code exchange"
	case "urn:ietf:params:oauth:grant-type:device_code":
		return "device token request"
	case "refresh_token":
		return "refresh"
	case grantTokenExchange:
		return "exchange"
	}
	return "token request"
}

// untransient turns postForm's retryable faults into errors wrapping
// ErrUnavailable, for callers that do their own retrying.
func untransient(err error) error {
	var te *transientError
	if errors.As(err, &te) {
		return fmt.Errorf("%w: %w", ErrUnavailable, te.err)
	}
	return err
}

// DeviceAuthorization is a device authorization response
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.2). DeviceCode is a
// secret; the other fields are meant for the user.
type DeviceAuthorization struct {
	DeviceCode              Secret
	UserCode                string // printable, at most 64 bytes
	VerificationURI         string
	VerificationURIComplete string        // empty when not sent
	ExpiresIn               time.Duration // zero when not sent
	// Interval is the minimum wait between polls; zero when not sent, and
	// then "clients MUST use 5 as the default"
	// (https://www.rfc-editor.org/rfc/rfc8628#section-3.2).
	Interval time.Duration
}

// AuthorizeDevice requests a device code for scopes
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.1) at the device
// authorization endpoint, authenticated as the account's client. Errors are
// as Grant's. The verification URIs are returned as sent: check them before
// showing them.
func (p *Provider) AuthorizeDevice(ctx context.Context, scopes []string) (DeviceAuthorization, error) {
	const op = "device authorization"
	endpoint, err := p.endpoint(op, "device authorization endpoint", p.md.DeviceAuthorizationEndpoint)
	if err != nil {
		return DeviceAuthorization{}, err
	}
	form := url.Values{}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	body, err := p.postForm(ctx, op, endpoint, form)
	if err != nil {
		return DeviceAuthorization{}, untransient(err)
	}
	return parseDeviceAuthorization(op, body)
}

// parseDeviceAuthorization parses a device authorization response. Its
// errors never quote the body, which holds the device code.
func parseDeviceAuthorization(op string, body []byte) (DeviceAuthorization, error) {
	var r struct {
		DeviceCode              string  `json:"device_code"`
		UserCode                string  `json:"user_code"`
		VerificationURI         string  `json:"verification_uri"`
		VerificationURIComplete string  `json:"verification_uri_complete"`
		ExpiresIn               seconds `json:"expires_in"`
		Interval                seconds `json:"interval"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return DeviceAuthorization{}, fmt.Errorf("%s: malformed response (%d bytes)", op, len(body))
	}
	userCode := untrusted.Text(r.UserCode, 64) // shown to the user
	if r.DeviceCode == "" || userCode == "" || r.VerificationURI == "" {
		return DeviceAuthorization{}, fmt.Errorf("%s: the response lacks device_code, user_code or verification_uri", op)
	}
	return DeviceAuthorization{
		DeviceCode:              Secret(r.DeviceCode),
		UserCode:                userCode,
		VerificationURI:         r.VerificationURI,
		VerificationURIComplete: r.VerificationURIComplete,
		ExpiresIn:               time.Duration(r.ExpiresIn) * time.Second,
		Interval:                time.Duration(r.Interval) * time.Second,
	}, nil
}

// IDClaims are the claims of a verified ID token, or of a userinfo
// response, that ncagent uses.
type IDClaims struct {
	Subject           string // sub
	PreferredUsername string // preferred_username; may be empty
	Name              string // name; may be empty
	Email             string // email; may be empty
}

// idTokenClaims is an ID token's payload
// (https://openid.net/specs/openid-connect-core-1_0.html#IDToken).
type idTokenClaims struct {
	jwt.RegisteredClaims
	Nonce             string `json:"nonce"`
	AuthorizedParty   string `json:"azp"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
	Email             string `json:"email"`
}

func (c *idTokenClaims) registered() *jwt.RegisteredClaims { return &c.RegisteredClaims }

// VerifyIDToken checks an ID token issued to the account's client as
// https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation
// asks, and returns its claims:
//   - the signature, with an asymmetric algorithm of the allow-list, against
//     the issuer's JWKS (jwks_uri), through the same cache and key rules as
//     JWT subject tokens;
//   - iss equal to Issuer();
//   - aud containing the account's client id; with several audiences an azp naming
//     the client, and any azp equal to it;
//   - exp required and not passed, iat and nbf (when present) not in the
//     future, each with a minute of leeway; sub required;
//   - when nonce is not empty, the token's nonce equal to it: "If a nonce
//     value was sent in the Authentication Request, a nonce Claim MUST be
//     present and its value checked to verify that it is the same value as
//     the one that was sent" (a failure wraps ErrNonce too).
//
// A rejection wraps ErrIDToken and says which check failed; a JWKS that
// cannot be fetched wraps ErrUnavailable instead. No error
// contains the token, a claim value or the nonce. VerifyIDToken is safe
// for concurrent use.
func (p *Provider) VerifyIDToken(ctx context.Context, raw, nonce string) (IDClaims, error) {
	acct, issuer, jwksURI := p.acct, p.Issuer(), p.md.JWKSURI
	if jwksURI == "" {
		return IDClaims{}, errors.New("verify id token: the issuer names no jwks_uri")
	}
	if err := CheckEndpointURL("verify id token: jwks uri", jwksURI); err != nil {
		return IDClaims{}, err
	}
	c, err := p.jwks(jwksURI)
	if err != nil {
		return IDClaims{}, fmt.Errorf("verify id token: %w", err)
	}
	var claims idTokenClaims
	policy := subjectPolicy{Issuer: issuer, Audiences: []string{acct.ClientID}, Leeway: idTokenLeeway, kind: idTokenKind}
	if err := c.verifyClaims(ctx, raw, policy, &claims); err != nil {
		return IDClaims{}, err
	}
	// "If the ID Token contains multiple audiences, the Client SHOULD verify
	// that an azp Claim is present." "If an azp (authorized party) Claim is
	// present, the Client SHOULD verify that its client_id is the Claim
	// Value." (OpenID Connect Core 1.0, section 3.1.3.7, items 4 and 5.)
	switch azp := claims.AuthorizedParty; {
	case azp == "" && len(claims.Audience) > 1:
		return IDClaims{}, fmt.Errorf("%w: several audiences but no authorized party (azp)", ErrIDToken)
	case azp != "" && azp != acct.ClientID:
		return IDClaims{}, fmt.Errorf("%w: authorized party (azp) is not client %q", ErrIDToken, acct.ClientID)
	}
	if nonce != "" {
		switch {
		case claims.Nonce == "":
			return IDClaims{}, fmt.Errorf("%w: %w: no nonce claim", ErrIDToken, ErrNonce)
		case subtle.ConstantTimeCompare([]byte(claims.Nonce), []byte(nonce)) != 1:
			return IDClaims{}, fmt.Errorf("%w: %w", ErrIDToken, ErrNonce)
		}
	}
	return IDClaims{Subject: claims.Subject, PreferredUsername: claims.PreferredUsername, Name: claims.Name, Email: claims.Email}, nil
}

// Userinfo asks the userinfo endpoint whom accessToken belongs to
// (https://openid.net/specs/openid-connect-core-1_0.html#UserInfo), for a
// token response without an ID token. The answer must be JSON (a signed
// userinfo response is not supported) and name the subject ("The sub
// (subject) Claim MUST always be returned in the UserInfo Response").
// Transport faults and 5xx wrap ErrUnavailable; other error answers are an
// *IdPError. No error carries the token.
func (p *Provider) Userinfo(ctx context.Context, accessToken Secret) (IDClaims, error) {
	const op = "userinfo"
	endpoint, err := p.endpoint(op, "userinfo endpoint", p.md.UserinfoEndpoint)
	if err != nil {
		return IDClaims{}, err
	}
	if err := CheckEndpointURL(op+": endpoint", endpoint); err != nil {
		return IDClaims{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return IDClaims{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return IDClaims{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return IDClaims{}, fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		return IDClaims{}, fmt.Errorf("%s: read response: %w: %w", op, ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		ie := parseIdPError(op, resp.StatusCode, body, url.Values{"token": {accessToken.Reveal()}})
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return IDClaims{}, fmt.Errorf("%w: %w", ErrUnavailable, ie)
		}
		return IDClaims{}, ie
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return IDClaims{}, fmt.Errorf("%s: unexpected content type %q", op, untrusted.Text(mt, 64))
	}
	var c struct {
		Sub               string `json:"sub"`
		PreferredUsername string `json:"preferred_username"`
		Name              string `json:"name"`
		Email             string `json:"email"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return IDClaims{}, fmt.Errorf("%s: malformed response (%d bytes)", op, len(body))
	}
	if c.Sub == "" {
		return IDClaims{}, fmt.Errorf("%s: the response names no subject (sub)", op)
	}
	return IDClaims{Subject: c.Sub, PreferredUsername: c.PreferredUsername, Name: c.Name, Email: c.Email}, nil
}
