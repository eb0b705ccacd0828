package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Secret is a credential value: a refresh token, an access token, an app
// password or a client secret. It redacts itself wherever it could be
// printed or logged; Reveal returns the value for the wire.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret value. The result must not be logged.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer and never returns the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer and never returns the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer and never returns the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps secrets out of accidental JSON/TOML encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Kind is the kind of an account.
type Kind string

const (
	// KindOIDC accounts keep a refresh token and serve Bearer tokens.
	KindOIDC Kind = "oidc"
	// KindAppPassword accounts keep a Nextcloud app password (Login Flow v2)
	// and serve Basic credentials.
	KindAppPassword Kind = "app-password"
)

// ClientAuth is the token endpoint client authentication method
// (https://www.rfc-editor.org/rfc/rfc6749#section-2.3).
type ClientAuth string

const (
	ClientAuthNone  ClientAuth = "none"                // public client: client_id only (PKCE)
	ClientAuthPost  ClientAuth = "client_secret_post"  // client_id + client_secret in the form
	ClientAuthBasic ClientAuth = "client_secret_basic" // HTTP Basic with url-encoded id and secret
)

// State is the state of an account.
type State string

const (
	StateSignedOut  State = "signed-out"
	StateSignedIn   State = "signed-in"
	StateNeedsLogin State = "needs-login"
	StateOffline    State = "offline"
)

// Endpoints are an issuer's endpoints. Empty fields are discovered; set
// fields override discovery (for a server behind a proxy whose discovery
// document names a host the agent cannot reach).
type Endpoints struct {
	Authorization       string `toml:"authorization,omitempty" json:"authorization_endpoint,omitempty"`
	Token               string `toml:"token,omitempty" json:"token_endpoint,omitempty"`
	Revocation          string `toml:"revocation,omitempty" json:"revocation_endpoint,omitempty"`
	JWKS                string `toml:"jwks,omitempty" json:"jwks_uri,omitempty"`
	DeviceAuthorization string `toml:"device_authorization,omitempty" json:"device_authorization_endpoint,omitempty"`
	Userinfo            string `toml:"userinfo,omitempty" json:"userinfo_endpoint,omitempty"`
}

// Account is the configuration of one account as the broker needs it. It
// holds no refresh secret: that lives in the Store.
type Account struct {
	Name     string
	Kind     Kind
	Server   string // Nextcloud base URL, e.g. https://cloud.example.com
	Username string // login name, when known

	// OIDC only.
	Issuer       string
	ClientID     string
	ClientSecret Secret     // confidential clients only; kept in the keychain by the agent
	ClientAuth   ClientAuth // default: none when ClientSecret is empty, else client_secret_basic
	Scopes       []string   // default scopes for background tokens
	Audience     string     // default audience for tokens (default "nextcloud" for exchange)
	Endpoints    Endpoints  // overrides of discovered endpoints

	// CAPEM is an extra PEM CA bundle trusted for this account's servers.
	CAPEM []byte

	// EarlyRefresh: a cached token is served while it has more than
	// max(minValid, EarlyRefresh) left. Default 30s.
	EarlyRefresh time.Duration
	// KeepAlive is the refresh interval used to keep the refresh token alive
	// when the IdP does not send refresh_expires_in. Zero means the default
	// (10 minutes); negative disables.
	KeepAlive time.Duration

	// AcceptedAudiences of JWT subject tokens; default "mcp-server" and ClientID.
	AcceptedAudiences []string
	// AllowedAlgs for JWT subject tokens; default asymmetric algorithms only.
	AllowedAlgs []string
	// CacheExchanged caches session tokens by subject token (default off).
	CacheExchanged bool
	// ExchangeFallbackRefresh allows serving a refresh-grant token when the
	// IdP answers unsupported_grant_type to token exchange (default off).
	ExchangeFallbackRefresh bool
	// ExchangeParams are extra form fields of every RFC 8693 request, for
	// providers that want more than the RFC (Dex: connector_id). They
	// never replace a field the RFC defines.
	ExchangeParams map[string]string

	// TokensPerGrant is TokensPerGrantAuto (default), TokensPerGrantOne or
	// TokensPerGrantMany (see grantpolicy.go).
	TokensPerGrant string
}

// Token is an access credential handed to a client. Its AccessToken must not
// be logged; String and LogValue redact it.
type Token struct {
	Account         string
	TokenType       string // "Bearer" or "Basic"
	AccessToken     Secret
	Expiry          time.Time // zero for credentials without expiry (app passwords)
	Scopes          []string  // granted scopes, as the IdP reported them
	Audience        string
	Username        string
	Server          string
	IssuedTokenType string // RFC 8693 issued_token_type, exchange only

	// auth and scope are Authorization() and Scope() made once, for a
	// token the cache hands out many times (withAnswers); empty: made
	// on each call.
	auth  Secret
	scope string
}

// Authorization returns the value of an HTTP Authorization header carrying
// the token ("Bearer …" or "Basic …"). The result must not be logged.
func (t Token) Authorization() string {
	if t.auth != "" {
		return t.auth.Reveal()
	}
	return t.TokenType + " " + t.AccessToken.Reveal()
}

// Scope returns the granted scopes space-separated, as in an OAuth token
// response's scope.
func (t Token) Scope() string {
	if t.scope != "" || len(t.Scopes) == 0 {
		return t.scope
	}
	return strings.Join(t.Scopes, " ")
}

// withAnswers returns t with Authorization() and Scope() made once.
func (t Token) withAnswers() Token {
	t.auth, t.scope = "", ""
	t.auth, t.scope = Secret(t.Authorization()), t.Scope()
	return t
}

// Valid reports whether the token has more than d left at now.
func (t Token) Valid(now time.Time, d time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.Sub(now) > d)
}

func (t Token) String() string {
	return fmt.Sprintf("Token{account=%s type=%s expiry=%s scopes=%v}", t.Account, t.TokenType, t.Expiry.Format(time.RFC3339), t.Scopes)
}

// GoString implements fmt.GoStringer as String does: %#v would print
// the unexported auth, which holds the token.
func (t Token) GoString() string { return t.String() }

func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("account", t.Account),
		slog.String("type", t.TokenType),
		slog.Time("expiry", t.Expiry),
		slog.Any("scopes", t.Scopes),
	)
}

// Store keeps one long-lived secret per account (a refresh token or an app
// password). The agent implements it with the OS keychain, or the
// age-encrypted file store where the user chose it. Implementations must
// bound every call by a timeout and must never fall back silently to
// another store. A Store that can tell whether a write would succeed now
// implements WritableStore; the Broker then sends no refresh it could not
// store.
type Store interface {
	// Get returns the account's secret, or an error wrapping ErrNotFound.
	Get(account string) (Secret, error)
	// Put stores the account's secret, replacing any previous one.
	Put(account string, secret Secret) error
	// Delete removes the account's secret; deleting a missing one is not an error.
	Delete(account string) error
}

// Sentinel errors.
var (
	ErrNeedsLogin     = errors.New("account needs sign-in")
	ErrUnknownAccount = errors.New("unknown account")
	ErrNotFound       = errors.New("secret not found")
	ErrSignedOut      = errors.New("account is signed out")
	// ErrUnavailable wraps transport faults: the IdP could not be reached or
	// kept answering 5xx/429 within the caller's deadline.
	ErrUnavailable = errors.New("identity provider unavailable")
	// ErrSubjectToken is returned when a JWT subject token fails local checks.
	ErrSubjectToken = errors.New("subject token rejected")
)

// IdPError is an OAuth 2.0 error response from the IdP
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.2).
type IdPError struct {
	Op          string // "refresh", "exchange", "revoke", "discovery", ...
	StatusCode  int
	Code        string // RFC 6749 "error"
	Description string // RFC 6749 "error_description"
}

func (e *IdPError) Error() string {
	msg := fmt.Sprintf("%s: identity provider error %q", e.Op, e.Code)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.StatusCode)
	}
	return msg
}

// AccountError ties an error to an account name.
type AccountError struct {
	Account string
	Err     error
}

func (e *AccountError) Error() string { return fmt.Sprintf("account %q: %v", e.Account, e.Err) }
func (e *AccountError) Unwrap() error { return e.Err }

// Event reports an account state change to listeners (the tray, the log).
type Event struct {
	Account string
	State   State
	Err     error // the cause, for needs-login and offline
}

// AccountStatus is a snapshot of one account for status displays.
type AccountStatus struct {
	Name          string
	Kind          Kind
	Server        string
	Issuer        string
	Username      string
	State         State
	Degraded      bool // a rotated refresh token could not be stored yet
	SingleToken   bool // the IdP ignores scope on refresh: one token per account
	Scopes        []string
	RefreshExpiry time.Time // zero when unknown
	Tokens        []CachedToken
	LastError     string
	LastRefresh   time.Time
}

// CachedToken describes a cached token without its value.
type CachedToken struct {
	Audience string
	Scopes   []string
	Expiry   time.Time
}

// RevokeResult says what a revocation did.
type RevokeResult struct {
	Account string
	// Where is "idp" (RFC 7009), "nextcloud" (app password deleted) or ""
	// when the server offers no revocation; Note then says where the user
	// revokes consent.
	Where         string
	Endpoint      string
	ServerRevoked bool
	SecretDeleted bool
	PurgedTokens  int
	Note          string
}

// sortedScopes returns a sorted, de-duplicated copy of scopes.
func sortedScopes(scopes []string) []string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return slices.Compact(s)
}

// Metadata is the part of an OpenID Provider's discovery document
// (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata,
// RFC 8414) that ncagent uses, after per-account overrides were applied.
type Metadata struct {
	Issuer                        string   `json:"issuer"`
	AuthorizationEndpoint         string   `json:"authorization_endpoint"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	RevocationEndpoint            string   `json:"revocation_endpoint,omitempty"`
	JWKSURI                       string   `json:"jwks_uri,omitempty"`
	DeviceAuthorizationEndpoint   string   `json:"device_authorization_endpoint,omitempty"`
	UserinfoEndpoint              string   `json:"userinfo_endpoint,omitempty"`
	GrantTypesSupported           []string `json:"grant_types_supported,omitempty"`
	ScopesSupported               []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethods      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	AuthorizationResponseIssParam bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// HTTPOptions configures NewHTTPClient.
type HTTPOptions struct {
	CAPEM     []byte        // extra PEM CA bundle, added to the system pool
	UserAgent string        // default buildinfo.UserAgent()
	Timeout   time.Duration // overall per-request timeout; default 30s
}
