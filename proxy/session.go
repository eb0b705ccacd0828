package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spec names what a session forwards as: the account and the scopes and
// audience of the Bearer tokens it asks for. PID and Command describe the
// program the session is for, for status only.
type Spec struct {
	Account  string
	Scopes   []string
	Audience string
	PID      int
	Command  string
}

// Upstream is where a session's requests go.
type Upstream struct {
	// Server is the account's server URL: scheme, host and path prefix
	// (e.g. https://cloud.example.com/nextcloud).
	Server *url.URL
	// Username is the real login name, handed to the child and checked
	// against the Basic user name it sends.
	Username string
	// Transport carries the requests, with the account's TLS settings
	// (see NewTransport). Nil: http.DefaultTransport.
	Transport http.RoundTripper
}

// Session is one open exec session. Its methods are safe for concurrent
// use.
type Session struct {
	// ID names the session in logs and status; it is not a secret.
	ID      string
	Spec    Spec
	Opened  time.Time
	up      Upstream
	hash    [32]byte // SHA-256 of the credential
	cred    string   // the credential; returned once by Credential
	p       *Proxy
	closed  atomic.Bool
	reqs    atomic.Int64
	mu      sync.Mutex // guards lastErr, lastAt
	lastErr string
	lastAt  time.Time
}

// Status is a session as `ncagent status` shows it. It holds no secret.
type Status struct {
	ID        string
	Account   string
	PID       int
	Command   string
	Opened    time.Time
	Requests  int64
	LastError string
	LastErrAt time.Time
}

// Credential returns the session's credential: the password (or Bearer
// token) the child sends. It is a secret: never log it.
func (s *Session) Credential() string { return s.cred }

// Username returns the login name the child sends with the credential.
func (s *Session) Username() string { return s.up.Username }

// URL returns the base URL the child uses: the proxy's address with the
// upstream's path prefix.
func (s *Session) URL() string {
	u := url.URL{Scheme: "http", Host: s.p.host(), Path: s.up.Server.Path}
	return strings.TrimSuffix(u.String(), "/")
}

// Close forgets the session: its credential is refused from now on.
// Requests already being forwarded finish. Close is safe to call twice.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.p.mu.Lock()
	delete(s.p.sessions, s.hash)
	s.p.mu.Unlock()
	s.p.log.Info("proxy: session closed", "session", s.ID, "account", s.Spec.Account, "requests", s.reqs.Load())
}

// Status returns the session's counters.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{ID: s.ID, Account: s.Spec.Account, PID: s.Spec.PID, Command: s.Spec.Command,
		Opened: s.Opened, Requests: s.reqs.Load(), LastError: s.lastErr, LastErrAt: s.lastAt}
}

func (s *Session) fail(msg string) {
	s.mu.Lock()
	s.lastErr, s.lastAt = msg, time.Now()
	s.mu.Unlock()
}

// newCredential returns 256 random bits, base64url-encoded (43 characters
// of [A-Za-z0-9_-], safe in a Basic password and a Bearer token alike).
func newCredential() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Open starts a session for spec forwarding to up. The caller must Close
// it when the program it is for ends.
func (p *Proxy) Open(spec Spec, up Upstream) (*Session, error) {
	if up.Server == nil || up.Server.Host == "" || (up.Server.Scheme != "https" && up.Server.Scheme != "http") {
		return nil, errors.New("proxy: open session: the account has no server URL")
	}
	if p.host() == "" {
		return nil, errors.New("proxy: open session: the proxy is not running")
	}
	if up.Transport == nil {
		up.Transport = http.DefaultTransport
	}
	srv := *up.Server
	srv.Path = strings.TrimSuffix(srv.Path, "/")
	srv.RawQuery, srv.Fragment, srv.User = "", "", nil
	up.Server = &srv
	s := &Session{ID: newID(), Spec: spec, Opened: time.Now(), up: up, cred: newCredential(), p: p}
	s.hash = sha256.Sum256([]byte(s.cred))
	p.mu.Lock()
	p.sessions[s.hash] = s
	p.mu.Unlock()
	p.log.Info("proxy: session opened", "session", s.ID, "account", spec.Account, "pid", spec.PID, "command", spec.Command)
	return s, nil
}

// lookup returns the open session whose credential is cred. The map is
// keyed by the credential's SHA-256, and the stored hash is compared again
// in constant time, so neither the lookup nor the comparison leaks how
// much of a guess was right.
func (p *Proxy) lookup(cred string) *Session {
	if cred == "" {
		return nil
	}
	h := sha256.Sum256([]byte(cred))
	p.mu.Lock()
	s := p.sessions[h]
	p.mu.Unlock()
	if s == nil || subtle.ConstantTimeCompare(s.hash[:], h[:]) != 1 || s.closed.Load() {
		return nil
	}
	return s
}

// Sessions returns the status of every open session, oldest first.
func (p *Proxy) Sessions() []Status {
	p.mu.Lock()
	list := make([]*Session, 0, len(p.sessions))
	for _, s := range p.sessions {
		list = append(list, s)
	}
	p.mu.Unlock()
	out := make([]Status, 0, len(list))
	for _, s := range list {
		out = append(out, s.Status())
	}
	sortStatus(out)
	return out
}
