package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// Error codes and their HTTP statuses.
const (
	CodeInvalidRequest = "invalid_request"    // 400
	CodeUnknownAccount = "unknown_account"    // 404
	CodeNeedsLogin     = "needs_login"        // 409
	CodeTooLarge       = "too_large"          // 413
	CodeIdPError       = "idp_error"          // 502
	CodeIdPUnavailable = "idp_unavailable"    // 503
	CodeTimeout        = "timeout"            // 504
	CodeInternal       = "internal"           // 500
	CodeForbidden      = "forbidden"          // 403
	CodeNotFound       = "not_found"          // 404 (no such endpoint)
	CodeMethod         = "method_not_allowed" // 405
)

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
	return statusForCode(e.Code)
}

// statusForCode maps a wire error code to its HTTP status.
func statusForCode(code string) int {
	switch code {
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnknownAccount, CodeNotFound:
		return http.StatusNotFound
	case CodeMethod:
		return http.StatusMethodNotAllowed
	case CodeNeedsLogin:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeIdPError:
		return http.StatusBadGateway
	case CodeIdPUnavailable:
		return http.StatusServiceUnavailable
	case CodeTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
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
// kernel reported it.
type Peer struct {
	UID  int    // -1 on Windows
	PID  int    // 0 when unknown
	Exe  string // executable path, when it could be read
	User string // Windows SID
}

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

// Fast JSON paths for the types on the hot path (TokenRequest, and
// TokenResponse). They give exactly what encoding/json gives, which
// FuzzFastJSON checks, and leave anything outside a plain subset to
// encoding/json: decoding handles only objects whose keys are the type's
// own field names, whose strings are printable ASCII without escapes, and
// whose numbers are integers; encoding handles every value but falls back
// per string that needs escaping and for times that are not UTC.

// appendJSON appends v encoded as json.Marshal does.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case *TokenResponse:
		if out, ok := appendTokenResponse(b, v); ok {
			return out, nil
		}
	case *TokenRequest:
		return appendTokenRequest(b, v), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

func appendTokenRequest(b []byte, r *TokenRequest) []byte {
	b = append(b, '{')
	start := len(b)
	// Each field with a leading comma; the first one's is dropped below.
	if r.Account != "" {
		b = append(b, `,"account":`...)
		b = appendJSONString(b, r.Account)
	}
	if len(r.Scopes) > 0 {
		b = append(b, `,"scopes":`...)
		b = appendJSONStrings(b, r.Scopes)
	}
	if r.Audience != "" {
		b = append(b, `,"audience":`...)
		b = appendJSONString(b, r.Audience)
	}
	if r.MinValidSeconds != 0 {
		b = append(b, `,"min_valid_seconds":`...)
		b = strconv.AppendInt(b, r.MinValidSeconds, 10)
	}
	if r.ClientHint != "" {
		b = append(b, `,"client_hint":`...)
		b = appendJSONString(b, r.ClientHint)
	}
	if len(b) > start {
		b = append(b[:start], b[start+1:]...)
	}
	return append(b, '}')
}

// appendTokenResponse appends r, or reports false when r.ExpiresAt is a
// time it leaves to encoding/json (not UTC, or a year outside 0-9999).
func appendTokenResponse(b []byte, r *TokenResponse) ([]byte, bool) {
	if !r.ExpiresAt.IsZero() && (r.ExpiresAt.Location() != time.UTC || r.ExpiresAt.Year() < 0 || r.ExpiresAt.Year() > 9999) {
		return b, false
	}
	b = append(b, `{"account":`...)
	b = appendJSONString(b, r.Account)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"access_token":`...)
	b = appendJSONString(b, r.AccessToken)
	b = append(b, `,"authorization":`...)
	b = appendJSONString(b, r.Authorization)
	if !r.ExpiresAt.IsZero() {
		b = append(b, `,"expires_at":"`...)
		b = r.ExpiresAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if r.ExpiresIn != 0 {
		b = append(b, `,"expires_in":`...)
		b = strconv.AppendInt(b, r.ExpiresIn, 10)
	}
	if r.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, r.Scope)
	}
	if r.Username != "" {
		b = append(b, `,"username":`...)
		b = appendJSONString(b, r.Username)
	}
	b = append(b, `,"server":`...)
	b = appendJSONString(b, r.Server)
	if r.IssuedTokenType != "" {
		b = append(b, `,"issued_token_type":`...)
		b = appendJSONString(b, r.IssuedTokenType)
	}
	return append(b, '}'), true
}

// appendJSONStrings appends a JSON array of strings.
func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s quoted as json.Marshal does; a string with a
// character it escapes (controls, quote, backslash, <, >, &, non-ASCII)
// is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSONByte(s[i]) {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSONByte reports whether c stands for itself inside a JSON string,
// in encoding/json's output (which escapes <, > and &) and in input this
// package decodes without encoding/json.
func plainJSONByte(c byte) bool { return plainJSON[c] }

var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()

// decodeTokenRequest decodes body into *r when it is a plain object (see
// above) and reports whether it did; otherwise r is untouched and the
// caller decodes with encoding/json, which also words the errors.
func decodeTokenRequest(body []byte, r *TokenRequest) bool {
	var out TokenRequest
	d := plainDecoder{s: string(body)}
	for key := d.first(); d.next(&key); {
		switch key {
		case "account":
			out.Account = d.str()
		case "audience":
			out.Audience = d.str()
		case "client_hint":
			out.ClientHint = d.str()
		case "min_valid_seconds":
			out.MinValidSeconds = d.int()
		case "scopes":
			// Scopes.UnmarshalJSON: a space-separated string or an array.
			if d.peek() == '"' {
				out.Scopes = strings.Fields(d.str())
			} else {
				out.Scopes = d.strs()
			}
		default:
			return false
		}
	}
	if !d.done() {
		return false
	}
	*r = out
	return true
}

// decodeTokenResponse is decodeTokenRequest for a TokenResponse.
func decodeTokenResponse(body []byte, r *TokenResponse) bool {
	var out TokenResponse
	d := plainDecoder{s: string(body)}
	for key := d.first(); d.next(&key); {
		switch key {
		case "account":
			out.Account = d.str()
		case "token_type":
			out.TokenType = d.str()
		case "access_token":
			out.AccessToken = d.str()
		case "authorization":
			out.Authorization = d.str()
		case "expires_at":
			out.ExpiresAt = d.utcTime()
		case "expires_in":
			out.ExpiresIn = d.int()
		case "scope":
			out.Scope = d.str()
		case "username":
			out.Username = d.str()
		case "server":
			out.Server = d.str()
		case "issued_token_type":
			out.IssuedTokenType = d.str()
		default:
			return false
		}
	}
	if !d.done() {
		return false
	}
	*r = out
	return true
}

// plainDecoder reads the plain JSON subset from s (the body, copied once:
// the strings it returns share it). Any byte outside the subset sets bad;
// the readers then return zero values and the caller drops the result.
//
//	for key := d.first(); d.next(&key); {
//		... read the value of key ...
//	}
//	ok := d.done()
type plainDecoder struct {
	s     string
	i     int
	bad   bool
	empty bool // the object has no members
	n     int  // members read
}

// first reads the opening brace and returns the first key, if any.
func (d *plainDecoder) first() string {
	d.ws()
	if !d.eat('{') {
		d.bad = true
		return ""
	}
	d.ws()
	if d.peek() == '}' {
		d.empty = true
		return ""
	}
	return d.key()
}

// next reports whether *key is a member whose value is to be read. From
// the second call on it first reads the separator and the next key, or the
// closing brace.
func (d *plainDecoder) next(key *string) bool {
	if d.bad {
		return false
	}
	if d.n > 0 {
		d.ws()
		if !d.eat(',') {
			d.bad = d.peek() != '}'
			return false
		}
		d.ws()
		*key = d.key()
	} else if d.empty {
		return false
	}
	d.n++
	return !d.bad
}

// key reads a key and its colon.
func (d *plainDecoder) key() string {
	k := d.str()
	d.ws()
	if !d.eat(':') {
		d.bad = true
	}
	d.ws()
	return k
}

// done reads the closing brace and reports whether the whole input was
// one plain object.
func (d *plainDecoder) done() bool {
	if d.bad || !d.eat('}') {
		return false
	}
	d.ws()
	return d.i == len(d.s)
}

func (d *plainDecoder) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *plainDecoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *plainDecoder) eat(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

// str reads a string of plain bytes.
func (d *plainDecoder) str() string {
	if !d.eat('"') {
		d.bad = true
		return ""
	}
	start := d.i
	for d.i < len(d.s) && plainJSONByte(d.s[d.i]) {
		d.i++
	}
	if !d.eat('"') {
		d.bad = true
		return ""
	}
	return d.s[start : d.i-1]
}

// strs reads an array of plain strings; [] is an empty, non-nil slice,
// as encoding/json makes it.
func (d *plainDecoder) strs() []string {
	if !d.eat('[') {
		d.bad = true
		return nil
	}
	list := []string{}
	d.ws()
	if d.eat(']') {
		return list
	}
	for !d.bad {
		d.ws()
		list = append(list, d.str())
		d.ws()
		if d.eat(']') {
			return list
		}
		if !d.eat(',') {
			d.bad = true
		}
	}
	return nil
}

// int reads an integer of at most 18 digits (no fraction or exponent).
func (d *plainDecoder) int() int64 {
	neg := d.eat('-')
	start := d.i
	var n int64
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		n = n*10 + int64(d.s[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 18 || digits > 1 && d.s[start] == '0' {
		d.bad = true
		return 0
	}
	if c := d.peek(); c == '.' || c == 'e' || c == 'E' {
		d.bad = true
		return 0
	}
	if neg {
		n = -n
	}
	return n
}

// utcTime reads a time of the form 2006-01-02T15:04:05Z.
func (d *plainDecoder) utcTime() time.Time {
	s := d.str()
	if len(s) != len("2006-01-02T15:04:05Z") || s[len(s)-1] != 'Z' {
		d.bad = true
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.bad = true
	}
	return t
}
