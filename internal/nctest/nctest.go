// Package nctest runs a fake Nextcloud server for ncagent's tests: the parts
// of Nextcloud that app-password accounts use, following Nextcloud's
// documented client APIs
// (https://docs.nextcloud.com/server/latest/developer_manual/client_apis/LoginFlow/index.html#login-flow-v2):
//
//   - POST /index.php/login/v2 starts a login flow and answers
//     {"poll": {"token", "endpoint"}, "login"}; the User-Agent names the
//     app password, as on Nextcloud.
//   - GET  {login} is the page the user's browser opens. It holds two
//     forms: "grant" (POST /login/v2/grant, what the user does after
//     signing in) and "deny" (POST /login/v2/deny). Nextcloud itself has
//     no deny button: a user who does not grant access simply leaves, and
//     the poll keeps answering 404 until the flow expires. Deny models
//     exactly that: the flow is dropped and the poll never succeeds.
//   - POST {endpoint} with token=<poll token> answers 404 while the flow is
//     pending, 200 {"server", "loginName", "appPassword"} once after the
//     grant, and 404 again afterwards ("Note that the 200 will only be
//     returned once"). A flow expires Options.FlowLifetime after it
//     started (Nextcloud: 20 minutes): its poll answers 404 and its page
//     can no longer grant.
//   - GET /ocs/v2.php/cloud/user?format=json with Basic auth (login name
//     and app password) and "OCS-APIRequest: true" answers the user's id
//     and display name; a wrong or deleted app password is 401.
//   - DELETE /ocs/v2.php/core/apppassword with Basic auth deletes the app
//     password used to authenticate it.
//   - WebDAV under /remote.php/dav/files/{user}/ and /remote.php/webdav/,
//     with Basic (app password) or Bearer auth: see registerDAV.
//
// The fake is stricter than Nextcloud where strictness catches client bugs:
// OCS requests without "OCS-APIRequest: true", or without format=json, are
// refused with 400.
//
// Only tests import it. App passwords, poll tokens and login URLs it hands
// out are credentials: tests must not log them.
package nctest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of Options.
const (
	DefaultLoginName    = "alice"
	DefaultDisplayName  = "Alice Liddell"
	DefaultFlowLifetime = 20 * time.Minute
)

// Endpoint names for Calls.
const (
	EndpointStart  = "start"  // POST /index.php/login/v2
	EndpointPage   = "page"   // GET the login URL
	EndpointGrant  = "grant"  // POST /login/v2/grant
	EndpointDeny   = "deny"   // POST /login/v2/deny
	EndpointPoll   = "poll"   // POST the poll endpoint
	EndpointUser   = "user"   // GET /ocs/v2.php/cloud/user
	EndpointDelete = "delete" // DELETE /ocs/v2.php/core/apppassword
	EndpointDAV    = "dav"    // any request under /remote.php (see DAV)
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// LoginName is what the user signs in with, and the loginName the
	// poll returns; default DefaultLoginName.
	LoginName string
	// UserID is the Nextcloud user id (OCS data.id); default LoginName.
	UserID string
	// DisplayName defaults to DefaultDisplayName.
	DisplayName string
	// FlowLifetime is how long a login flow can be granted and polled
	// after it started; default DefaultFlowLifetime.
	FlowLifetime time.Duration
	// ReportedServer is the "server" the poll returns; default the
	// server's URL. Nextcloud behind a TLS-terminating proxy may report
	// an http:// address here.
	ReportedServer string
	// Now is the server's clock; default time.Now.
	Now func() time.Time
	// Bearer, when set, accepts "Authorization: Bearer" on WebDAV: it
	// returns the user the token belongs to and whether it is valid now
	// (tests check it against their IdP). See registerDAV.
	Bearer func(token string) (user string, ok bool)
	// DAVDir, when set, holds the WebDAV files instead of memory.
	DAVDir string
	// OnRequest, when set, sees every request before it is served.
	OnRequest func(*http.Request)
}

// Server is a running fake Nextcloud. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:34567.
	URL string

	opts Options
	ts   *httptest.Server

	mu         sync.Mutex       // guards the fields below
	flows      map[string]*flow // pending flows, by login token
	calls      map[string]int
	passwords  map[string]bool // issued app passwords: true while valid
	issued     []string        // every app password issued, in order
	userAgents []string        // User-Agent of every start request
	failVerify int             // answer the next failVerify verifications with 401
}

// flow is one Login Flow v2.
type flow struct {
	login   string // token in the login URL
	poll    string // poll token
	started time.Time
	agent   string // User-Agent of the start request
	granted string // the app password once granted; then polled at most once
}

// New starts a server and registers its Close with t.Cleanup.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.LoginName == "" {
		opts.LoginName = DefaultLoginName
	}
	if opts.UserID == "" {
		opts.UserID = opts.LoginName
	}
	if opts.DisplayName == "" {
		opts.DisplayName = DefaultDisplayName
	}
	if opts.FlowLifetime <= 0 {
		opts.FlowLifetime = DefaultFlowLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		flows:     map[string]*flow{},
		calls:     map[string]int{},
		passwords: map[string]bool{},
	}
	mux := http.NewServeMux()
	// Nextcloud serves its routes with and without index.php.
	for _, prefix := range []string{"", "/index.php"} {
		mux.HandleFunc("POST "+prefix+"/login/v2", s.handleStart)
		mux.HandleFunc("GET "+prefix+"/login/v2/flow/{token}", s.handlePage)
		mux.HandleFunc("POST "+prefix+"/login/v2/grant", s.handleDecision(EndpointGrant))
		mux.HandleFunc("POST "+prefix+"/login/v2/deny", s.handleDecision(EndpointDeny))
		mux.HandleFunc("POST "+prefix+"/login/v2/poll", s.handlePoll)
	}
	mux.HandleFunc("GET /ocs/v2.php/cloud/user", s.handleUser)
	mux.HandleFunc("DELETE /ocs/v2.php/core/apppassword", s.handleDelete)
	s.registerDAV(mux)
	s.ts = httptest.NewServer(s.observe(mux))
	s.URL = s.ts.URL
	t.Cleanup(s.Close)
	return s
}

// Close shuts the server down. It is safe to call more than once.
func (s *Server) Close() { s.ts.Close() }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Calls returns how many requests reached endpoint (one of the Endpoint
// constants), counted on arrival.
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// UserAgents returns the User-Agent of every login flow started, in order.
func (s *Server) UserAgents() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.userAgents)
}

// AppPasswords returns every app password the server issued, deleted ones
// included, in order. They are secrets: tests use them to look for leaks
// and must not log them.
func (s *Server) AppPasswords() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Valid reports whether password is an app password the server issued and
// has not deleted.
func (s *Server) Valid(password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.passwords[password]
}

// FailVerifications makes the next n GET /ocs/v2.php/cloud/user requests
// answer 401 whatever their credentials, as Nextcloud does for an app
// password that was deleted meanwhile.
func (s *Server) FailVerifications(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failVerify = n
}

// Grant does what the user's browser does on the login page after the user
// signed in: it grants access. It goes through HTTP like a browser, so it
// counts in Calls(EndpointPage) and Calls(EndpointGrant). It fails when the
// flow is unknown or expired.
func (s *Server) Grant(loginURL string) error { return s.decide(loginURL, EndpointGrant) }

// Deny submits the login page's deny form: the flow is dropped and its poll
// never succeeds (see the package documentation).
func (s *Server) Deny(loginURL string) error { return s.decide(loginURL, EndpointDeny) }

func (s *Server) decide(loginURL, action string) error {
	c := s.Client()
	resp, err := c.Get(loginURL)
	if err != nil {
		return fmt.Errorf("nctest: open login page: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("nctest: open login page: HTTP %d", resp.StatusCode)
	}
	token := loginToken(loginURL)
	resp, err = c.PostForm(s.URL+"/login/v2/"+action, url.Values{"flow": {token}})
	if err != nil {
		return fmt.Errorf("nctest: %s: %w", action, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("nctest: %s: HTTP %d", action, resp.StatusCode)
	}
	return nil
}

// loginToken returns the last path segment of a login URL.
func loginToken(loginURL string) string {
	u, err := url.Parse(loginURL)
	if err != nil {
		return ""
	}
	p := strings.TrimRight(u.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[endpoint]++
}

// randomToken returns a random token of n bytes, base64url-encoded, like
// Nextcloud's 128-character tokens in spirit.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// handleStart starts a login flow.
func (s *Server) handleStart(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointStart)
	f := &flow{login: randomToken(48), poll: randomToken(48), started: s.opts.Now(), agent: r.UserAgent()}
	s.mu.Lock()
	s.flows[f.login] = f
	s.userAgents = append(s.userAgents, f.agent)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"poll":  map[string]string{"token": f.poll, "endpoint": s.URL + "/login/v2/poll"},
		"login": s.URL + "/login/v2/flow/" + f.login,
	})
}

// live returns the pending, unexpired flow with login token token; an
// expired one is dropped. s.mu must be held.
func (s *Server) live(token string) *flow {
	f := s.flows[token]
	if f == nil {
		return nil
	}
	if !s.opts.Now().Before(f.started.Add(s.opts.FlowLifetime)) {
		delete(s.flows, token)
		return nil
	}
	return f
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Token}}<form method="post" action="/login/v2/grant"><input type="hidden" name="flow" value="{{.Token}}"><button>Grant access</button></form>
<form method="post" action="/login/v2/deny"><input type="hidden" name="flow" value="{{.Token}}"><button>Cancel</button></form>
{{end}}</body></html>
`))

type page struct {
	Title, Message, Token string
}

func writePage(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, p)
}

// handlePage serves the login page of a flow: in Nextcloud the user signs
// in here and then grants access to the client named by its User-Agent.
func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointPage)
	token := r.PathValue("token")
	s.mu.Lock()
	f := s.live(token)
	var agent string
	if f != nil {
		agent = f.agent
	}
	s.mu.Unlock()
	if f == nil {
		writePage(w, http.StatusForbidden, page{Title: "Token expired",
			Message: "The login flow is unknown or has expired. Start the login again from your client."})
		return
	}
	writePage(w, http.StatusOK, page{Title: "Connect to your account",
		Message: fmt.Sprintf("Please log in before granting %s access to your account %s.", agent, s.opts.LoginName),
		Token:   token})
}

// handleDecision grants or denies a flow, as the user's browser posts it.
func (s *Server) handleDecision(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(action)
		token := r.PostFormValue("flow")
		s.mu.Lock()
		f := s.live(token)
		switch {
		case f == nil:
		case action == EndpointDeny:
			delete(s.flows, token)
		case f.granted == "":
			f.granted = randomToken(54)
			s.passwords[f.granted] = true
			s.issued = append(s.issued, f.granted)
		}
		s.mu.Unlock()
		switch {
		case f == nil:
			writePage(w, http.StatusForbidden, page{Title: "Token expired",
				Message: "The login flow is unknown or has expired. Start the login again from your client."})
		case action == EndpointDeny:
			writePage(w, http.StatusOK, page{Title: "Access not granted",
				Message: "You did not grant access. You can close this window."})
		default:
			writePage(w, http.StatusOK, page{Title: "Account connected",
				Message: "Your client should now be connected. You can close this window."})
		}
	}
}

// handlePoll answers the client's poll: 404 until the flow is granted,
// then the credentials exactly once.
func (s *Server) handlePoll(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointPoll)
	token := r.PostFormValue("token")
	var done *flow
	s.mu.Lock()
	for login := range s.flows {
		f := s.live(login)
		if f != nil && f.poll == token && token != "" && f.granted != "" {
			done = f
			delete(s.flows, login)
			break
		}
	}
	s.mu.Unlock()
	if done == nil {
		writeJSON(w, http.StatusNotFound, []any{})
		return
	}
	server := s.opts.ReportedServer
	if server == "" {
		server = s.URL
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"server":      server,
		"loginName":   s.opts.LoginName,
		"appPassword": done.granted,
	})
}

// ocs writes an OCS v2 JSON envelope.
func ocs(w http.ResponseWriter, status int, data any) {
	meta := map[string]any{"status": "ok", "statuscode": status, "message": "OK"}
	if status != http.StatusOK {
		meta["status"] = "failure"
		meta["message"] = http.StatusText(status)
	}
	if status == http.StatusUnauthorized {
		// Nextcloud's OCS status for an unauthenticated request.
		meta["statuscode"] = 997
		meta["message"] = "Current user is not logged in"
	}
	writeJSON(w, status, map[string]any{"ocs": map[string]any{"meta": meta, "data": data}})
}

// authOCS checks an OCS request's headers and Basic credentials. It
// returns the app password, or writes the refusal and returns "".
func (s *Server) authOCS(w http.ResponseWriter, r *http.Request) string {
	if r.Header.Get("OCS-APIRequest") != "true" {
		ocs(w, http.StatusBadRequest, map[string]string{"error": "OCS-APIRequest: true is required"})
		return ""
	}
	if r.URL.Query().Get("format") != "json" && !strings.Contains(r.Header.Get("Accept"), "application/json") {
		ocs(w, http.StatusBadRequest, map[string]string{"error": "this fake speaks JSON only: add format=json"})
		return ""
	}
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	valid := ok && (user == s.opts.LoginName || user == s.opts.UserID) && s.passwords[pass]
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Basic realm="Authorisation Required"`)
		ocs(w, http.StatusUnauthorized, []any{})
		return ""
	}
	return pass
}

// handleUser answers who the credentials belong to, as Nextcloud's
// provisioning API does for the current user.
func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointUser)
	s.mu.Lock()
	fail := s.failVerify > 0
	if fail {
		s.failVerify--
	}
	s.mu.Unlock()
	if fail {
		w.Header().Set("WWW-Authenticate", `Basic realm="Authorisation Required"`)
		ocs(w, http.StatusUnauthorized, []any{})
		return
	}
	if s.authOCS(w, r) == "" {
		return
	}
	ocs(w, http.StatusOK, map[string]any{
		"id":           s.opts.UserID,
		"display-name": s.opts.DisplayName,
		"email":        s.opts.UserID + "@example.com",
	})
}

// handleDelete deletes the app password the request authenticated with.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.count(EndpointDelete)
	pass := s.authOCS(w, r)
	if pass == "" {
		return
	}
	s.mu.Lock()
	s.passwords[pass] = false
	s.mu.Unlock()
	ocs(w, http.StatusOK, []any{})
}
