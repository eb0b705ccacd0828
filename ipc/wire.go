package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/usersock"
)

// ProtocolVersion is the wire protocol version served under /v1/.
const ProtocolVersion = 1

// MaxBodyBytes is the largest request body accepted; larger ones get too_large.
const MaxBodyBytes = 64 << 10

// Scopes decodes from a JSON array of strings or a space-separated string
// (the RFC 6749 section 3.3 form) and encodes as an array.
type Scopes []string

// errScopesType is returned by Scopes.UnmarshalJSON for a value that is
// neither a string nor an array of strings. Its text names the field and
// never echoes the input.
var errScopesType = errors.New("scopes: want an array of strings or a space-separated string")

// UnmarshalJSON accepts null, a space-separated string or an array of
// strings. It does not validate the scope tokens; the server does.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return errScopesType
		}
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errScopesType
	}
	*s = list
	return nil
}

// TokenRequest is the body of POST /v1/token.
type TokenRequest struct {
	Account         string `json:"account,omitempty"`
	Scopes          Scopes `json:"scopes,omitempty"`
	Audience        string `json:"audience,omitempty"`
	MinValidSeconds int64  `json:"min_valid_seconds,omitempty"`
	ClientHint      string `json:"client_hint,omitempty"`
}

// ExchangeRequest is the body of POST /v1/exchange. SubjectToken and
// ActorToken are secrets: never log them.
type ExchangeRequest struct {
	Account          string `json:"account,omitempty"`
	SubjectToken     string `json:"subject_token"`
	SubjectTokenType string `json:"subject_token_type,omitempty"`
	Audience         string `json:"audience,omitempty"`
	Scopes           Scopes `json:"scopes,omitempty"`
	ActorToken       string `json:"actor_token,omitempty"`
	ActorTokenType   string `json:"actor_token_type,omitempty"`
	ClientHint       string `json:"client_hint,omitempty"`
}

// TokenResponse answers /v1/token and /v1/exchange. AccessToken and
// Authorization are secrets.
type TokenResponse struct {
	Account         string    `json:"account"`
	TokenType       string    `json:"token_type"`
	AccessToken     string    `json:"access_token"`
	Authorization   string    `json:"authorization"`
	ExpiresAt       time.Time `json:"expires_at,omitzero"`
	ExpiresIn       int64     `json:"expires_in,omitempty"`
	Scope           string    `json:"scope,omitempty"`
	Username        string    `json:"username,omitempty"`
	Server          string    `json:"server"`
	IssuedTokenType string    `json:"issued_token_type,omitempty"`
}

// StatusResponse is GET /v1/status.
type StatusResponse struct {
	Version  string          `json:"version"`
	Commit   string          `json:"commit,omitempty"`
	PID      int             `json:"pid"`
	Socket   string          `json:"socket,omitempty"`
	Started  time.Time       `json:"started"`
	Accounts []AccountStatus `json:"accounts"`
	// ExecSessions are the open ncagent exec sessions (session.go).
	ExecSessions []SessionStatus `json:"exec_sessions,omitempty"`
	// DefaultAccount answers requests that name no account ("" when none).
	DefaultAccount string `json:"default_account,omitempty"`
	// SecretStore names where secrets are kept ("keychain", or "file" for
	// the age file store) and, after a colon, why it cannot be used now.
	SecretStore string `json:"secret_store,omitempty"`
}

// AccountStatus is one account in StatusResponse.
type AccountStatus struct {
	Name          string        `json:"name"`
	Kind          string        `json:"kind"`
	Server        string        `json:"server,omitempty"`
	Issuer        string        `json:"issuer,omitempty"`
	User          string        `json:"user,omitempty"`
	DisplayName   string        `json:"display_name,omitempty"`
	State         string        `json:"state"`
	Degraded      bool          `json:"degraded,omitempty"`
	Scopes        []string      `json:"scopes,omitempty"`
	Tokens        []CachedToken `json:"tokens,omitempty"`
	RefreshExpiry time.Time     `json:"refresh_expires_at,omitzero"`
	LastRefresh   time.Time     `json:"last_refresh,omitzero"`
	LastError     string        `json:"last_error,omitempty"`
	// Store is set when the secret store cannot take (or give) this
	// account's secret now: "keychain locked: run ncagent unlock", ...
	Store string `json:"store,omitempty"`
}

// CachedToken describes a cached token without its value.
type CachedToken struct {
	Audience  string    `json:"audience,omitempty"`
	Scopes    []string  `json:"scopes,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// LoginRequest is the body of POST /v1/login.
type LoginRequest struct {
	Account      string `json:"account"`
	Server       string `json:"server,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"` // secret; never logged
	Scopes       Scopes `json:"scopes,omitempty"`
	Method       string `json:"method,omitempty"` // browser, device, app-password; empty: choose
	CAPEM        string `json:"ca_pem,omitempty"`
	CAFile       string `json:"ca_file,omitempty"` // path of a PEM CA bundle on this machine, kept in config
	// RedirectHost is the loopback host of the browser sign-in's redirect
	// URI, "localhost" or "127.0.0.1", kept in config; empty: the
	// account's, else the provider's default.
	RedirectHost string `json:"redirect_host,omitempty"`
	// OpenBrowser asks the agent to open the browser itself (the tray and
	// setup page); the CLI opens it in the user's own process instead.
	OpenBrowser bool `json:"open_browser,omitempty"`
}

// LoginEvent is one line of the newline-delimited JSON stream answering
// POST /v1/login. The stream ends with an event of type "done" or "error".
type LoginEvent struct {
	// Type: "joined" (first, when the request joined a sign-in of the
	// account already in progress: the events so far follow), "method"
	// (which method and why), "open_url" (URL to open), "user_code" (device
	// flow: URL and code to show), "waiting", "done", "error".
	Type      string    `json:"type"`
	Account   string    `json:"account,omitempty"`
	Method    string    `json:"method,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	URL       string    `json:"url,omitempty"`
	UserCode  string    `json:"user_code,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	State     string    `json:"state,omitempty"`
	User      string    `json:"user,omitempty"`
	Message   string    `json:"message,omitempty"`
	Error     string    `json:"error,omitempty"` // error code, as in Error
}

// RevokeRequest is the body of POST /v1/revoke.
type RevokeRequest struct {
	Account string `json:"account"`
	// Forget also deletes the account's other secrets (a confidential
	// client's secret) from the agent's store, keychain or file store:
	// ncagent remove sets it. Older agents ignore it (wire v1).
	Forget bool `json:"forget,omitempty"`
}

// RevokeResponse answers /v1/revoke.
type RevokeResponse struct {
	Account       string `json:"account"`
	Where         string `json:"where,omitempty"` // "idp", "nextcloud" or ""
	Endpoint      string `json:"endpoint,omitempty"`
	ServerRevoked bool   `json:"server_revoked"`
	SecretDeleted bool   `json:"secret_deleted"`
	PurgedTokens  int    `json:"purged_tokens"`
	Note          string `json:"note,omitempty"`
}

// Error codes.
const (
	CodeInvalidRequest = "invalid_request"
	CodeUnknownAccount = "unknown_account"
	CodeNeedsLogin     = "needs_login"
	CodeTooLarge       = "too_large"
	CodeIdPError       = "idp_error"
	CodeIdPUnavailable = "idp_unavailable"
	CodeStoreLocked    = "store_locked" // the keychain or file store cannot take a rotated secret now
	CodeTimeout        = "timeout"
	CodeInternal       = "internal"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found" // no such endpoint
	CodeMethod         = "method_not_allowed"
)

// codeStatus is the HTTP status of each error code; others are 500.
var codeStatus = map[string]int{
	CodeInvalidRequest: http.StatusBadRequest,
	CodeUnknownAccount: http.StatusNotFound,
	CodeNeedsLogin:     http.StatusConflict,
	CodeTooLarge:       http.StatusRequestEntityTooLarge,
	CodeIdPError:       http.StatusBadGateway,
	CodeIdPUnavailable: http.StatusServiceUnavailable,
	CodeStoreLocked:    http.StatusServiceUnavailable,
	CodeTimeout:        http.StatusGatewayTimeout,
	CodeForbidden:      http.StatusForbidden,
	CodeNotFound:       http.StatusNotFound,
	CodeMethod:         http.StatusMethodNotAllowed,
}

// Error is the wire error body, and the error type the Backend returns to
// choose a code. Message must never carry a secret.
type Error struct {
	Code     string `json:"error"`
	Message  string `json:"message"`
	Account  string `json:"account,omitempty"`
	IdPError string `json:"idp_error,omitempty"` // the IdP's RFC 6749 error, for idp_error
	Status   int    `json:"-"`                   // HTTP status; derived from Code when zero
}

// HTTPStatus returns e.Status, or the status documented for e.Code when
// Status is zero. Unknown codes are 500.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if st, ok := codeStatus[e.Code]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// Error formats the code, account and message; it never carries a secret
// because Message does not.
func (e *Error) Error() string {
	if e.Account != "" {
		return fmt.Sprintf("%s: account %q: %s", e.Code, e.Account, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Peer identifies the process on the other end of a connection, as the
// kernel reported it: UID (-1 on Windows), PID (0 when unknown), Exe (the
// executable path, when it could be read) and User (the Windows SID).
type Peer = usersock.Peer

// Backend serves the API. The agent implements it. Errors of type *Error
// choose the wire code; any other error is internal.
type Backend interface {
	Status(ctx context.Context) (StatusResponse, error)
	Token(ctx context.Context, peer Peer, req TokenRequest) (TokenResponse, error)
	Exchange(ctx context.Context, peer Peer, req ExchangeRequest) (TokenResponse, error)
	// Login runs a sign-in, calling progress for each event; it returns when
	// the sign-in ended. The final "done"/"error" event is written by ipc
	// from the returned error.
	Login(ctx context.Context, peer Peer, req LoginRequest, progress func(LoginEvent)) (LoginEvent, error)
	Revoke(ctx context.Context, peer Peer, req RevokeRequest) (RevokeResponse, error)
}
