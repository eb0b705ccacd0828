package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// SetupOptions configures NewSetupServer. The zero value works.
type SetupOptions struct {
	Logger *slog.Logger
	// IdleTimeout stops the page after this long without a request and
	// without a sign-in running. Default 15 minutes.
	IdleTimeout time.Duration
	// LoginTimeout bounds one sign-in started from the page. Default 20
	// minutes.
	LoginTimeout time.Duration
	// DoneGrace is how long the page keeps serving after it showed a
	// successful sign-in. Default 3 seconds.
	DoneGrace time.Duration
	// Peer names the page in the agent's logs. Default: this process.
	Peer ipc.Peer
	// LinkTTL is how long a one-time link stays valid unused. Default 2
	// minutes: the link is opened at once, by the browser it was made for.
	LinkTTL time.Duration
	// Redeemed is told each one-time link when a browser used it, so that
	// whatever carried it to the browser (agent.OpenURL's trampoline page)
	// can go. Optional; called on the request's goroutine.
	Redeemed func(link string)
}

// SetupServer is the local setup page: a form on 127.0.0.1 that adds an
// account (or signs one in again) through Backend.Login, for people who
// would rather not use the command line.
//
// Only the person the link was given to gets in: the URL carries a
// one-time token, exchanged on first use for an HttpOnly, SameSite=Strict
// session cookie and refused after; requests without a valid cookie or
// token, or with a Host header other than the listener's 127.0.0.1:port
// (DNS rebinding) get 403. The form is protected by a per-session CSRF
// token. The page never shows a secret.
//
// It stops on Close, when the Start context ends, shortly after it showed
// a successful sign-in, or after IdleTimeout without use.
type SetupServer struct {
	b    Backend
	opts SetupOptions
	log  *slog.Logger
	done chan struct{}

	mu       sync.Mutex // guards every field below
	started  bool
	closed   bool
	host     string // "127.0.0.1:port", the only Host accepted
	srv      *http.Server
	tokens   map[[32]byte]time.Time     // unused one-time tokens, by SHA-256: their expiry
	sessions map[[32]byte]*setupSession // by SHA-256 of the cookie
	running  int                        // sign-ins in progress
	idle     *time.Timer
	cancel   context.CancelFunc // ends the sign-ins when the page stops
	ctx      context.Context
}

// setupSession is one browser that came in with a valid link.
type setupSession struct {
	csrf     string
	attempts []*attempt // sign-ins started, by id-1
}

// attempt is one sign-in started from the form.
type attempt struct {
	id   int
	form setupForm

	// Guarded by SetupServer.mu.
	method   string
	reason   string
	openURL  string
	userCode string
	finished bool
	result   ipc.LoginEvent
	err      error
}

// setupForm is the form's fields.
type setupForm struct {
	Account, Server, Issuer, ClientID, Method string
	// RedirectHost is the browser sign-in's loopback host: "" (the
	// provider's default), "localhost" or "127.0.0.1".
	RedirectHost string
}

const (
	cookieName   = "ncagent_setup"
	maxFormBytes = 16 << 10
)

// NewSetupServer returns a setup page for b; Start serves it.
func NewSetupServer(b Backend, opts SetupOptions) *SetupServer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 15 * time.Minute
	}
	if opts.LoginTimeout <= 0 {
		opts.LoginTimeout = 20 * time.Minute
	}
	if opts.DoneGrace <= 0 {
		opts.DoneGrace = 3 * time.Second
	}
	if opts.LinkTTL <= 0 {
		opts.LinkTTL = 2 * time.Minute
	}
	if opts.Peer == (ipc.Peer{}) {
		opts.Peer = selfPeer()
	}
	return &SetupServer{
		b:        b,
		opts:     opts,
		log:      opts.Logger,
		done:     make(chan struct{}),
		tokens:   map[[32]byte]time.Time{},
		sessions: map[[32]byte]*setupSession{},
	}
}

// Start listens on 127.0.0.1 on a free port and serves the page until it
// stops. It returns the page's URL with a one-time token: give it only to
// the browser, and never log it. Start may be called once.
func (s *SetupServer) Start(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return "", errors.New("setup page: already started")
	}
	s.started = true
	s.mu.Unlock()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("setup page: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.host = ln.Addr().String()
	s.srv = srv
	s.ctx, s.cancel = lctx, cancel
	s.idle = time.AfterFunc(s.opts.IdleTimeout, s.idleCheck)
	s.mu.Unlock()

	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("setup page: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	s.log.Info("setup page started", "addr", s.host)
	return s.Link()
}

// Link returns a new one-time URL for the running page, for a second
// browser or a second click on Add account…. It fails once the page
// stopped.
func (s *SetupServer) Link() (string, error) {
	tok := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.closed {
		return "", errors.New("setup page: not running")
	}
	s.tokens[sha256.Sum256([]byte(tok))] = time.Now().Add(s.opts.LinkTTL)
	s.touchLocked()
	return "http://" + s.host + "/?token=" + tok, nil
}

// Done is closed when the page has stopped.
func (s *SetupServer) Done() <-chan struct{} { return s.done }

// Close stops the page and the sign-ins it started. It is safe to call
// twice.
func (s *SetupServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, cancel, idle := s.srv, s.cancel, s.idle
	s.mu.Unlock()
	if idle != nil {
		idle.Stop()
	}
	if cancel != nil {
		cancel()
	}
	var err error
	if srv != nil {
		err = srv.Close()
	}
	close(s.done)
	s.log.Info("setup page stopped")
	return err
}

// touchLocked restarts the idle timer. s.mu must be held.
func (s *SetupServer) touchLocked() {
	if s.idle != nil && !s.closed {
		s.idle.Reset(s.opts.IdleTimeout)
	}
}

// idleCheck stops the page unless a sign-in runs.
func (s *SetupServer) idleCheck() {
	s.mu.Lock()
	busy := s.running > 0
	if busy {
		s.touchLocked()
	}
	s.mu.Unlock()
	if !busy {
		s.log.Info("setup page idle: stopping")
		s.Close()
	}
}

// closeSoon stops the page after d, letting the last response reach the
// browser.
func (s *SetupServer) closeSoon(d time.Duration) {
	time.AfterFunc(d, func() { s.Close() })
}

// randomToken is 256 bits from crypto/rand, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ServeHTTP checks Host, token or cookie, then serves the page.
func (s *SetupServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on our own form posts, and the origin check needs it.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")

	s.mu.Lock()
	host := s.host
	s.touchLocked()
	s.mu.Unlock()
	// DNS rebinding: a page from another origin that resolves its own name
	// to 127.0.0.1 still sends its own name as Host.
	if r.Host != host {
		s.forbid(w, "wrong host")
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" || r.URL.Query().Has("token") {
		s.exchangeToken(w, r, tok)
		return
	}
	sess := s.session(r)
	if sess == nil {
		s.forbid(w, "no session")
		return
	}
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.serveForm(w, r, sess)
	case r.URL.Path == "/login" && r.Method == http.MethodPost:
		s.serveLogin(w, r, sess)
	case r.URL.Path == "/progress" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		s.serveProgress(w, r, sess)
	case r.URL.Path == "/" || r.URL.Path == "/login" || r.URL.Path == "/progress":
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

// forbid answers 403 with a page saying how to get a fresh link.
func (s *SetupServer) forbid(w http.ResponseWriter, why string) {
	s.log.Info("setup page: request refused", "reason", why)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	renderPage(w, pageData{Title: "This link does not work", Forbidden: true})
}

// exchangeToken turns a valid unused one-time token into a session cookie
// and redirects to the form, so that the token leaves the address bar.
func (s *SetupServer) exchangeToken(w http.ResponseWriter, r *http.Request, tok string) {
	if r.Method != http.MethodGet || tok == "" {
		s.forbid(w, "bad token")
		return
	}
	key := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	expiry, ok := s.tokens[key]
	delete(s.tokens, key)
	expired := ok && time.Now().After(expiry)
	ok = ok && !expired
	host := s.host
	var cookie string
	if ok {
		cookie = randomToken()
		s.sessions[sha256.Sum256([]byte(cookie))] = &setupSession{csrf: randomToken()}
	}
	s.mu.Unlock()
	if s.opts.Redeemed != nil && (ok || expired) {
		s.opts.Redeemed("http://" + host + "/?token=" + tok)
	}
	if !ok {
		s.forbid(w, "unknown, used or expired token")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    cookie,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// session returns the request's session, or nil.
func (s *SetupServer) session(r *http.Request) *setupSession {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sha256.Sum256([]byte(c.Value))]
}

func (s *SetupServer) serveForm(w http.ResponseWriter, r *http.Request, sess *setupSession) {
	d := pageData{Title: "Add a Nextcloud account", CSRF: sess.csrf, Form: setupForm{Method: "auto"}}
	if n, err := strconv.Atoi(r.URL.Query().Get("retry")); err == nil {
		s.mu.Lock()
		if n >= 1 && n <= len(sess.attempts) {
			d.Form = sess.attempts[n-1].form
		}
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	renderPage(w, d)
}

var accountNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
})
