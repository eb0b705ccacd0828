package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ncagent/ncagent/internal/recovery"
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

// parseForm reads and checks the submitted fields; the error says what to
// correct.
func parseForm(r *http.Request) (setupForm, error) {
	f := setupForm{
		Account:  strings.TrimSpace(r.PostFormValue("account")),
		Server:   strings.TrimSpace(r.PostFormValue("server")),
		Issuer:   strings.TrimSpace(r.PostFormValue("issuer")),
		ClientID: strings.TrimSpace(r.PostFormValue("client_id")),
		Method:   r.PostFormValue("method"),

		RedirectHost: r.PostFormValue("redirect_host"),
	}
	if f.Method == "" {
		f.Method = "auto"
	}
	if err := checkWebURL(f.Server); err != nil {
		return f, fmt.Errorf("server address: %w", err)
	}
	if f.Issuer != "" {
		if err := checkWebURL(f.Issuer); err != nil {
			return f, fmt.Errorf("issuer: %w", err)
		}
	}
	if f.Account == "" {
		f.Account = accountFromServer(f.Server)
	}
	if !accountNameRE().MatchString(f.Account) {
		return f, errors.New("account name: use letters, digits, dot, dash or underscore, at most 64")
	}
	if len(f.ClientID) > 256 || strings.ContainsAny(f.ClientID, "\r\n") {
		return f, errors.New("client id: too long or on several lines")
	}
	switch f.Method {
	case "auto", "browser", "app-password":
	default:
		return f, errors.New("method: choose automatic, browser or app password")
	}
	switch f.RedirectHost {
	case "", "localhost", "127.0.0.1":
	default:
		return f, errors.New("redirect host: choose automatic, localhost or 127.0.0.1")
	}
	return f, nil
}

// checkWebURL accepts an absolute http or https URL with a host.
func checkWebURL(s string) error {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("give the full address, like https://cloud.example.com")
	}
	if u.User != nil {
		return errors.New("leave user name and password out of the address")
	}
	return nil
}

// accountFromServer suggests an account name from the server's host:
// https://cloud.example.com gives "cloud".
func accountFromServer(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return ""
	}
	label, _, _ := strings.Cut(u.Hostname(), ".")
	label = strings.ToLower(label)
	label = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, label)
	if label == "" {
		return "nextcloud"
	}
	return label
}

func (s *SetupServer) serveLogin(w http.ResponseWriter, r *http.Request, sess *setupSession) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	// CSRF: the token of this session, and (where the browser says) our own
	// origin. SameSite=Strict already keeps the cookie off cross-site posts.
	if !sameString(r.PostFormValue("csrf"), sess.csrf) {
		s.forbid(w, "bad csrf token")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		s.forbid(w, "cross-origin post")
		return
	}
	f, err := parseForm(r)
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		renderPage(w, pageData{Title: "Add a Nextcloud account", CSRF: sess.csrf, Form: f, FormError: err.Error()})
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "the setup page is stopping", http.StatusServiceUnavailable)
		return
	}
	a := &attempt{id: len(sess.attempts) + 1, form: f}
	sess.attempts = append(sess.attempts, a)
	s.running++
	ctx := s.ctx
	s.mu.Unlock()

	go s.runLogin(ctx, a)
	http.Redirect(w, r, "/progress?id="+strconv.Itoa(a.id), http.StatusSeeOther)
}

// runLogin runs one sign-in and records its progress.
func (s *SetupServer) runLogin(ctx context.Context, a *attempt) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.LoginTimeout)
	defer cancel()
	defer s.recoverLogin(a)
	req := ipc.LoginRequest{
		Account:     a.form.Account,
		Server:      a.form.Server,
		Issuer:      a.form.Issuer,
		ClientID:    a.form.ClientID,
		OpenBrowser: true,

		RedirectHost: a.form.RedirectHost,
	}
	if a.form.Method != "auto" {
		req.Method = a.form.Method
	}
	s.log.Info("setup page: sign-in started", "account", req.Account, "server", req.Server, "method", a.form.Method)
	res, err := s.b.Login(ctx, s.opts.Peer, req, func(ev ipc.LoginEvent) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch ev.Type {
		case "method":
			a.method, a.reason = ev.Method, ev.Reason
		case "open_url":
			a.openURL = ev.URL
		case "user_code":
			a.openURL, a.userCode = ev.URL, ev.UserCode
		}
	})
	if err != nil {
		s.log.Warn("setup page: sign-in failed", "account", req.Account, "err", err)
	} else {
		s.log.Info("setup page: signed in", "account", req.Account, "user", res.User)
	}
	s.mu.Lock()
	a.finished, a.result, a.err = true, res, err
	s.running--
	s.touchLocked()
	s.mu.Unlock()
	if err == nil {
		// Stop even if nobody looks at the result.
		s.closeSoon(2 * time.Minute)
	}
}

// recoverLogin ends an attempt whose sign-in panicked (a bug) with an
// error, logging the panic without secrets; the page keeps serving.
func (s *SetupServer) recoverLogin(a *attempt) {
	v := recover()
	if v == nil {
		return
	}
	recovery.Log(s.log, "setup page sign-in", v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !a.finished {
		a.finished, a.err = true, errors.New("the sign-in stopped on an internal error (a bug: please report it with the agent log)")
		s.running--
	}
}

func (s *SetupServer) serveProgress(w http.ResponseWriter, r *http.Request, sess *setupSession) {
	id, _ := strconv.Atoi(r.URL.Query().Get("id"))
	s.mu.Lock()
	var a *attempt
	if id >= 1 && id <= len(sess.attempts) {
		a = sess.attempts[id-1]
	}
	var d pageData
	if a != nil {
		d = progressData(a)
	}
	s.mu.Unlock()
	if a == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	renderPage(w, d)
	if d.Success {
		s.closeSoon(s.opts.DoneGrace)
	}
}

// progressData describes an attempt for the page. SetupServer.mu must be
// held.
func progressData(a *attempt) pageData {
	d := pageData{Attempt: a.id, Form: a.form, Server: a.form.Server, Account: a.form.Account}
	switch {
	case !a.finished:
		d.Title = "Signing in…"
		d.Refresh = true
		d.Method = methodText(a.method)
		d.Reason = a.reason
		if checkWebURL(a.openURL) == nil {
			d.OpenURL = a.openURL
		}
		d.UserCode = a.userCode
	case a.err == nil:
		d.Title = "Signed in"
		d.Success = true
		d.User = a.result.User
		d.Message = sentence(a.result.Message)
	default:
		d.Title = "Sign-in did not finish"
		d.Failed = true
		d.Message = sentence(errorText(a.err))
		d.Next = nextStep(a.err)
	}
	return d
}

func methodText(m string) string {
	switch m {
	case "browser":
		return "OpenID Connect in the browser"
	case "device":
		return "a device code"
	case "app-password":
		return "a Nextcloud app password (Login Flow v2)"
	}
	return ""
}

// nextStep says what to do after a failed sign-in, by wire error code.
func nextStep(err error) string {
	var we *ipc.Error
	code := ""
	if errors.As(err, &we) {
		code = we.Code
	}
	switch {
	case code == ipc.CodeTimeout || errors.Is(err, context.DeadlineExceeded):
		return "The sign-in was not finished in time. Try again, and finish it in the browser tab that opens."
	case code == ipc.CodeIdPUnavailable:
		return "The server could not be reached. Check the address and your connection, then try again."
	case code == ipc.CodeIdPError:
		return "The server refused the sign-in. Check the issuer and client id (or leave them empty), then try again."
	case code == ipc.CodeInvalidRequest:
		return "Correct the form and try again."
	}
	return "Try again. If it keeps failing, run ncagent status in a terminal and look at the agent's log."
}

// sameString compares in constant time for equal lengths.
func sameString(a, b string) bool {
	if len(a) != len(b) || a == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sentence capitalises the first letter of an agent message for the page
// (agent messages are lowercase, CLI style).
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
