package agent

// Sign-in flows: the common request and result types, their sentinel errors,
// the step common to the OpenID Connect flows (token response to result)
// and the choice of a method for a bare --server. The protocol requests
// themselves (code exchange, token requests, device authorization, ID token
// and userinfo checks, discovery) are a broker.Provider's.
// The flows themselves live in signin_browser.go (RFC 8252 authorization
// code + PKCE), signin_device.go (RFC 8628 device authorization grant) and
// signin_loginflow.go (Nextcloud Login Flow v2 app passwords).
//
// None of these functions logs. Secrets (codes, verifiers, refresh and
// access tokens, ID tokens, device codes, poll tokens, app passwords) never
// reach an error, a progress event or a page shown in the browser.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

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
	// It is broker.ErrIDToken.
	ErrIDToken = broker.ErrIDToken
	// ErrSignInRefused: the server refused the credentials the sign-in
	// produced (Login Flow v2: HTTP 401 on the verification call), so
	// nothing was kept.
	ErrSignInRefused = errors.New("the server refused the new credentials")
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
	// idp makes the OpenID Connect protocol requests (code exchange, token
	// requests, device authorization, ID token and userinfo checks). The
	// agent passes the broker's Provider of the account; when nil,
	// withDefaults makes one from Metadata, HTTP and Now.
	idp *broker.Provider
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
	if r.idp == nil {
		p, err := broker.NewProvider(r.account(), r.Metadata, broker.ProviderOptions{HTTPClient: r.HTTP, Now: r.Now})
		if err != nil {
			return r, fmt.Errorf("sign-in: %w", err)
		}
		r.idp = p
	}
	r.Metadata = r.idp.Metadata()
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

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sleepCtx waits d, or until ctx is done and then returns ctx.Err(): the
// wait between the polls of the device and login flows.
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

// equalSecret compares two values in constant time.
func equalSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// maxResponseBytes bounds every response body read from a Nextcloud server.
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

// unavailable wraps a transport error of op as broker.ErrUnavailable.
// Transport errors name the URL (never a query: no secret travels in one
// here) but never a body.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, broker.ErrUnavailable, err)
}

// account is the account being signed in as a broker.Provider wants it:
// the client, and the endpoints already discovered as overrides.
func (r signInRequest) account() broker.Account {
	md := r.Metadata
	return broker.Account{
		Name:         r.Account,
		Kind:         broker.KindOIDC,
		Server:       r.Server,
		Issuer:       r.issuer(),
		ClientID:     r.ClientID,
		ClientSecret: r.ClientSecret,
		ClientAuth:   r.ClientAuth,
		Endpoints: broker.Endpoints{
			Authorization:       md.AuthorizationEndpoint,
			Token:               md.TokenEndpoint,
			Revocation:          md.RevocationEndpoint,
			JWKS:                md.JWKSURI,
			DeviceAuthorization: md.DeviceAuthorizationEndpoint,
			Userinfo:            md.UserinfoEndpoint,
		},
	}
}

// finishOIDC turns a token response into a signInResult: it verifies the
// ID token (required when nonce is set, and then its nonce must match),
// insists on a refresh token, and fills user and scope details.
func finishOIDC(ctx context.Context, r signInRequest, tr broker.TokenResponse, nonce string, op string) (signInResult, error) {
	now := r.Now()
	claims, err := identify(ctx, r, tr, nonce)
	if err != nil {
		return signInResult{}, fmt.Errorf("%s: %w", op, err)
	}
	if tr.RefreshToken == "" {
		return signInResult{}, fmt.Errorf("%s: %w: allow offline access (offline_access) for client %q", op, ErrNoRefreshToken, r.ClientID)
	}
	granted := tr.Scopes
	if len(granted) == 0 {
		// https://www.rfc-editor.org/rfc/rfc6749#section-5.1: scope is
		// "OPTIONAL, if identical to the scope requested by the client".
		granted = signInScopes(r.Scopes, r.Metadata)
	}
	tokenType := tr.TokenType
	if tokenType == "" || strings.EqualFold(tokenType, "bearer") {
		tokenType = "Bearer"
	}
	username := userName(claims)
	res := signInResult{
		Kind: broker.KindOIDC, Secret: tr.RefreshToken,
		Server: r.Server, Issuer: r.issuer(),
		Username: username, UserID: claims.Subject, DisplayName: claims.Name,
		Scopes: granted,
		Initial: &broker.Token{Account: r.Account, TokenType: tokenType, AccessToken: tr.AccessToken,
			Scopes: granted, Username: username, Server: r.Server},
	}
	if tr.ExpiresIn > 0 {
		res.Initial.Expiry = now.Add(tr.ExpiresIn)
	}
	if tr.RefreshExpiresIn > 0 {
		res.RefreshExpiry = now.Add(tr.RefreshExpiresIn)
	}
	return res, nil
}

// identify says whom a token response belongs to: the verified ID token's
// claims, else (without a nonce to check) the userinfo endpoint's answer,
// else nobody known.
func identify(ctx context.Context, r signInRequest, tr broker.TokenResponse, nonce string) (broker.IDClaims, error) {
	switch {
	case tr.IDToken != "":
		return verifyIDToken(ctx, r, tr.IDToken.Reveal(), nonce)
	case nonce != "":
		// https://openid.net/specs/openid-connect-core-1_0.html#TokenResponse:
		// a successful token response to an openid request carries an
		// id_token. Without it the nonce cannot be checked.
		return broker.IDClaims{}, fmt.Errorf("token response carries no id_token, so the nonce cannot be checked: %w", ErrSignInState)
	case r.Metadata.UserinfoEndpoint != "":
		// Without an ID token, ask who the access token belongs to;
		// without a userinfo endpoint the user stays unknown.
		return r.idp.Userinfo(ctx, tr.AccessToken)
	}
	return broker.IDClaims{}, nil
}

// verifyIDToken checks an ID token with broker.VerifyIDToken (signature,
// iss, aud, azp, exp, and the nonce when not empty). A missing or
// different nonce wraps ErrSignInState as well: the answer may belong to
// another sign-in. Other failures wrap ErrIDToken.
func verifyIDToken(ctx context.Context, r signInRequest, raw, nonce string) (broker.IDClaims, error) {
	c, err := r.idp.VerifyIDToken(ctx, raw, nonce)
	if errors.Is(err, broker.ErrNonce) {
		return broker.IDClaims{}, fmt.Errorf("%w: %w", err, ErrSignInState)
	}
	return c, err
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
	err := probeDiscovery(ctx, client, base)
	switch {
	case err == nil && clientID != "":
		return MethodBrowser, fmt.Sprintf("%s offers OpenID Connect and client %q is configured: signing in through the browser", hostOf(base), clientID)
	case err == nil:
		return MethodAppPassword, fmt.Sprintf("%s offers OpenID Connect, but no client id is configured: using a Nextcloud app password (Login Flow v2); "+
			"for OpenID Connect, register a public client on the server (occ oidc:create ncagent 'http://localhost:*/callback' --type=public) and log in again with --client-id", hostOf(base))
	}
	return MethodAppPassword, fmt.Sprintf("no OpenID Connect discovery for %s (%v): using a Nextcloud app password (Login Flow v2), which works on every stock Nextcloud", base, err)
}

// probeDiscovery checks that issuer publishes a discovery document the
// broker accepts (the very check the sign-in makes next) that names an
// authorization endpoint. Its error is short, in words for the user.
func probeDiscovery(ctx context.Context, client *http.Client, issuer string) error {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	p, err := broker.DiscoverProvider(ctx, broker.Account{Issuer: issuer}, broker.ProviderOptions{HTTPClient: client})
	var ue *url.Error
	switch {
	case err == nil && p.Metadata().AuthorizationEndpoint == "":
		return errors.New("the discovery document names no authorization endpoint")
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return errors.New("no answer in time")
	case errors.As(err, &ue):
		return errors.New("server unreachable")
	}
	return err
}

// hostOf returns the host of a URL, or the URL itself when it has none.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}
