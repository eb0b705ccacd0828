// Package idptest runs a real OAuth 2.0 / OpenID Connect authorization
// server in-process for ncagent's tests. It is ory/fosite (HMAC access and
// refresh tokens, RS256 ID tokens) behind an httptest server, with the
// behaviours ncagent depends on made strict and observable: refresh token
// rotation with reuse detection that revokes the whole grant, PKCE required
// for public clients, RFC 9207 "iss" in authorization responses, RFC 7009
// revocation, RFC 7662 introspection and RFC 8693 token exchange. Hooks
// inject faults (denied authorizations, wrong iss or nonce, HTTP errors,
// latency) and counters report what clients asked for.
//
// Only tests import it. Tokens and client secrets it hands out are real
// credentials of the test server: tests must not log them either.
package idptest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
)

// Registered clients. All three may use the authorization code, refresh
// token and token exchange grants, with the redirect URIs in RedirectURIs.
const (
	// PublicClientID is a public client (token_endpoint_auth_method
	// "none"); it must use PKCE with S256.
	PublicClientID = "ncagent"
	// ConfidentialClientID authenticates with client_secret_basic and the
	// secret in Server.ConfidentialSecret.
	ConfidentialClientID = "ncagent-confidential"
	// PostClientID authenticates with client_secret_post and the secret in
	// Server.PostSecret.
	PostClientID = "ncagent-post"
)

// DefaultSubject is the user every authorization is approved for unless
// Options.Subject says otherwise.
const DefaultSubject = "alice"

// Defaults of Options. Callers must not modify these slices.
var (
	// DefaultScopes are the scopes the clients may request.
	DefaultScopes = []string{"openid", "offline_access", "profile", "email", "files", "files.read", "calendar", "contacts", "talk", "mcp"}
	// DefaultAudiences are the audiences the clients may request.
	DefaultAudiences = []string{"nextcloud", "mcp-server", "files-api"}
	// RedirectURIs are registered for every client. Loopback URIs match
	// with any port (RFC 8252 §7.3), for 127.0.0.1 and localhost alike.
	RedirectURIs = []string{"http://localhost/callback", "http://127.0.0.1/callback"}
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// TLS serves HTTPS with a self-signed certificate (see Server.CAPEM).
	TLS bool
	// Subject is the user authorizations are approved for; default DefaultSubject.
	Subject string
	// Scopes the clients may request; default DefaultScopes.
	Scopes []string
	// Audiences the clients may request; default DefaultAudiences.
	Audiences []string
	// AccessTokenLifespan defaults to 5 minutes.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan defaults to 1 hour.
	RefreshTokenLifespan time.Duration
	// SendRefreshExpiresIn adds Keycloak's refresh_expires_in (seconds)
	// to token responses that carry a refresh token.
	SendRefreshExpiresIn bool
	// IgnoreScopeOnRefresh behaves like the Nextcloud oidc app: a refresh
	// ignores the scope parameter and answers with the full original
	// scope, and every refresh revokes all access tokens issued earlier
	// in the grant. Without it, a refresh may narrow the scope of the new
	// access token (RFC 6749 §6) and earlier access tokens stay valid.
	IgnoreScopeOnRefresh bool
	// Latency delays every request; see also Server.SetLatency.
	Latency time.Duration
	// Key signs ID tokens and MintJWT tokens. Nil generates a fresh
	// 2048-bit RSA key, which takes about a quarter of a second; a test
	// suite starting many servers may share one key through this field.
	Key *rsa.PrivateKey
	// SubjectTokenError is the error code for an invalid or unacceptable
	// subject or actor token in a token exchange. Default "invalid_grant",
	// what many IdPs send; RFC 8693 §2.2.2 names "invalid_request".
	SubjectTokenError string
	// Profile reproduces a real provider's quirks (see Profile).
	Profile Profile
	// NoTokenExchange leaves the RFC 8693 grant out: the discovery
	// document's grant_types_supported lacks it and the token endpoint
	// answers it like a grant it does not know.
	NoTokenExchange bool
	// Username is the preferred_username claim (ID token and userinfo,
	// with the profile scope); default Subject.
	Username string
}

// Server is a running authorization server. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL, which is also the issuer.
	URL string
	// ConfidentialSecret is ConfidentialClientID's client secret, random
	// per server. It must not be logged.
	ConfidentialSecret string
	// PostSecret is PostClientID's client secret, random per server. It
	// must not be logged.
	PostSecret string

	opts     Options
	beh      behaviour
	ts       *httptest.Server
	key      *rsa.PrivateKey
	kid      string
	provider fosite.OAuth2Provider
	store    *store
	access   *oauth2.HMACSHAStrategy
	mux      *http.ServeMux

	// tokenMu serializes token endpoint requests, so that two concurrent
	// uses of one refresh token are a rotation and a reuse, as on an IdP
	// with transactional storage, not two successful rotations.
	tokenMu sync.Mutex

	mu             sync.Mutex // guards the fields below
	calls          map[string]int
	revocations    int
	discoveries    int
	jwksFetches    int
	authorizations int
	denyNext       *fosite.RFC6749Error
	issParam       *string // nil: the issuer
	nonce          *string // nil: the requested nonce
	fault          func(http.ResponseWriter, *http.Request) bool
	latency        time.Duration
	answerDelay    time.Duration // SetAnswerDelay
	editDiscovery  func(map[string]any)
	grantsBy       map[string][]string // client+subject → grant request IDs (ProfileDex)
}

// New starts a server and registers its Close with t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := start(opts)
	if err != nil {
		t.Fatalf("idptest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func start(opts Options) (*Server, error) {
	if opts.Subject == "" {
		opts.Subject = DefaultSubject
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	if opts.Audiences == nil {
		opts.Audiences = DefaultAudiences
	}
	if opts.AccessTokenLifespan == 0 {
		opts.AccessTokenLifespan = 5 * time.Minute
	}
	if opts.RefreshTokenLifespan == 0 {
		opts.RefreshTokenLifespan = time.Hour
	}
	if opts.SubjectTokenError == "" {
		opts.SubjectTokenError = "invalid_grant"
	}
	if opts.Username == "" {
		opts.Username = opts.Subject
	}
	opts.Scopes = slices.Clone(opts.Scopes)
	opts.Audiences = slices.Clone(opts.Audiences)

	key := opts.Key
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
	}
	s := &Server{
		ConfidentialSecret: randomHex(24),
		PostSecret:         randomHex(24),
		opts:               opts,
		beh:                opts.Profile.behaviour(opts),
		grantsBy:           map[string][]string{},
		key:                key,
		kid:                randomHex(8),
		store:              newStore(opts.Profile.behaviour(opts)),
		mux:                http.NewServeMux(),
		calls:              make(map[string]int),
		latency:            opts.Latency,
	}
	s.ts = httptest.NewUnstartedServer(s)
	if opts.TLS {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	s.URL = s.ts.URL
	if err := s.compose(); err != nil {
		s.ts.Close()
		return nil, err
	}
	s.mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	if s.beh.prefix != "" {
		s.mux.HandleFunc("GET "+s.path("openid-configuration"), s.handleDiscovery)
	}
	s.mux.HandleFunc("GET "+s.path("jwks"), s.handleJWKS)
	s.mux.HandleFunc("GET "+s.path("authorize"), s.handleAuthorize)
	s.mux.HandleFunc("POST "+s.path("token"), s.handleToken)
	if s.beh.revocation {
		s.mux.HandleFunc("POST "+s.path("revoke"), s.handleRevoke)
	}
	if s.beh.introspection {
		s.mux.HandleFunc("POST "+s.path("introspect"), s.handleIntrospect)
	}
	s.mux.HandleFunc("GET "+s.path("userinfo"), s.handleUserinfo)
	return s, nil
}

// compose builds the fosite provider, registers the clients and installs
// the refresh and token exchange handlers.
func (s *Server) compose() error {
	secret := make([]byte, 32) // fosite's HMAC strategy needs 32 bytes
	_, _ = rand.Read(secret)
	cfg := &fosite.Config{
		AccessTokenLifespan:   s.opts.AccessTokenLifespan,
		RefreshTokenLifespan:  s.opts.RefreshTokenLifespan,
		AuthorizeCodeLifespan: 5 * time.Minute,
		IDTokenLifespan:       time.Hour,
		IDTokenIssuer:         s.URL,
		AccessTokenIssuer:     s.URL,
		TokenURL:              s.endpoint("token"),
		GlobalSecret:          secret,
		// https://www.rfc-editor.org/rfc/rfc8252#section-8.1: "Public native
		// app clients MUST implement the Proof Key for Code Exchange (PKCE
		// [RFC7636]) extension to OAuth, and authorization servers MUST
		// support PKCE for such clients". Plain stays disabled: S256 only.
		EnforcePKCEForPublicClients: true,
		ScopeStrategy:               fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:    fosite.ExactAudienceMatchingStrategy,
		HashCost:                    4, // bcrypt's minimum keeps client authentication fast
	}
	s.provider = compose.ComposeAllEnabled(cfg, s.store, s.key)
	s.access = compose.NewOAuth2HMACStrategy(cfg)

	for i, h := range cfg.TokenEndpointHandlers {
		if rh, ok := h.(*oauth2.RefreshTokenGrantHandler); ok {
			cfg.TokenEndpointHandlers[i] = &refreshHandler{
				RefreshTokenGrantHandler: rh,
				ignoreScope:              s.beh.ignoreScope,
				access:                   s.access,
				refresh:                  s.access,
				store:                    s.store,
				dead:                     s.beh.deadRefresh,
			}
		}
	}
	if s.beh.exchange {
		cfg.TokenEndpointHandlers.Append(s.exchangeHandler(cfg))
	}

	hasher := &fosite.BCrypt{Config: cfg}
	for _, c := range []struct{ id, secret, method string }{
		{PublicClientID, "", "none"},
		{ConfidentialClientID, s.ConfidentialSecret, "client_secret_basic"},
		{PostClientID, s.PostSecret, "client_secret_post"},
	} {
		var hashed []byte
		if c.secret != "" {
			var err error
			if hashed, err = hasher.Hash(context.Background(), []byte(c.secret)); err != nil {
				return fmt.Errorf("hash client secret of %s: %w", c.id, err)
			}
		}
		s.store.Clients[c.id] = &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            c.id,
				Secret:        hashed,
				Public:        c.secret == "",
				RedirectURIs:  slices.Clone(s.beh.redirectURIs),
				GrantTypes:    []string{"authorization_code", "refresh_token", GrantTypeTokenExchange},
				ResponseTypes: []string{"code"},
				Scopes:        slices.Clone(s.opts.Scopes),
				Audience:      slices.Clone(s.opts.Audiences),
			},
			TokenEndpointAuthMethod: c.method,
		}
	}
	return nil
}

// Issuer returns the issuer identifier, equal to URL.
func (s *Server) Issuer() string { return s.URL }

// Close shuts the server down; later requests fail to connect. It is safe
// to call more than once; New already registers it with t.Cleanup.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client that trusts the server's certificate
// (with Options.TLS) and follows redirects.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// ServeHTTP implements http.Handler: counts the request, applies latency,
// lets the fault hook answer, then serves the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.count(r)
	s.mu.Lock()
	latency, fault := s.latency, s.fault
	s.mu.Unlock()
	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	if fault != nil && fault(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}
