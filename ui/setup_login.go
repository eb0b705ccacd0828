package ui

// The setup page's sign-in: the submitted form checked, the sign-in run
// through Backend.Login, and its progress shown.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ncagent/ncagent/internal/recovery"
	"github.com/ncagent/ncagent/ipc"
)

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
