package agent

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/untrusted"
	"github.com/ncagent/ncagent/ipc"
)

// callbackPath is the fixed path of the loopback redirect URI.
const callbackPath = "/callback"

// signInBrowser signs in with the OAuth 2.0 authorization code grant and
// PKCE for native apps (https://www.rfc-editor.org/rfc/rfc8252):
//
//   - it listens on a random port of the loopback interface (127.0.0.1 and,
//     for the "localhost" redirect host, ::1 on the same port), redirect URI
//     http://<host>:<port>/callback, host from redirectHost (RedirectHost,
//     else localhost on the Nextcloud oidc app and 127.0.0.1 elsewhere);
//   - it reports the authorization URL as an "open_url" event and then
//     "waiting"; the caller opens the URL;
//   - a GET /callback without our state (compared in constant time) gets
//     400 and is ignored, so that another local process cannot abort the
//     sign-in; after 20 of them it ends with ErrSignInState (refuseForged);
//   - the first GET /callback with our state decides the outcome: its RFC
//     9207 iss must match the issuer, then an error= response ends the
//     sign-in with that error and a code is exchanged (with the PKCE
//     verifier) and the ID token verified, nonce included. Every outcome is
//     shown to the browser as a small page and ends the flow. Other paths
//     and methods get 404/405 and change nothing;
//   - no answer within r.Timeout (default 5 minutes) is ErrSignInTimeout.
//
// The listener is closed when the function returns, whatever the outcome.
// The result's Secret is the refresh token; a token response without one is
// ErrNoRefreshToken.
func signInBrowser(ctx context.Context, r signInRequest) (signInResult, error) {
	r, err := r.withDefaults(DefaultSignInTimeout)
	if err != nil {
		return signInResult{}, err
	}
	r.Method = MethodBrowser
	if err := checkBrowserRequest(r); err != nil {
		return signInResult{}, err
	}
	host := redirectHost(r.RedirectHost, r.Metadata)
	lns, port, err := listenLoopback(host)
	if err != nil {
		return signInResult{}, fmt.Errorf("browser sign-in: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	f := newBrowserFlow(ctx, r, "http://"+net.JoinHostPort(host, strconv.Itoa(port))+callbackPath)
	defer f.serve(lns)()

	r.progress(ipc.LoginEvent{Type: "open_url", URL: f.authURL(),
		Message: "open this URL in your browser to sign in"})
	r.progress(ipc.LoginEvent{Type: "waiting", ExpiresAt: r.Now().Add(r.Timeout),
		Message: "waiting for the browser to come back to " + f.cfg.RedirectURL})
	select {
	case out := <-f.done:
		return out.res, out.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return signInResult{}, fmt.Errorf("browser sign-in: the browser did not come back to %s within %s (%s): %w",
				f.cfg.RedirectURL, r.Timeout.Round(time.Second), redirectAdvice(r, host), ErrSignInTimeout)
		}
		return signInResult{}, fmt.Errorf("browser sign-in: %w", ctx.Err())
	}
}

// checkBrowserRequest refuses a browser sign-in that cannot work before
// the browser is involved; the broker checks the token endpoint again.
func checkBrowserRequest(r signInRequest) error {
	if r.ClientID == "" {
		return errors.New("browser sign-in: no client id")
	}
	if r.Metadata.AuthorizationEndpoint == "" || r.Metadata.TokenEndpoint == "" {
		return errors.New("browser sign-in: the issuer's metadata names no authorization or token endpoint")
	}
	return broker.CheckEndpointURL("browser sign-in: token endpoint", r.Metadata.TokenEndpoint)
}

// newBrowserFlow returns the flow of one browser sign-in with fresh
// state, nonce and PKCE verifier, redirected to redirectURI.
func newBrowserFlow(ctx context.Context, r signInRequest, redirectURI string) *browserFlow {
	return &browserFlow{
		r:        r,
		ctx:      ctx,
		state:    randomString(32),
		nonce:    randomString(32),
		verifier: oauth2.GenerateVerifier(),
		done:     make(chan browserOutcome, 1),
		// The authorization request only; the code goes to the token
		// endpoint through the broker's Provider (callback).
		cfg: oauth2.Config{
			ClientID:    r.ClientID,
			Endpoint:    oauth2.Endpoint{AuthURL: r.Metadata.AuthorizationEndpoint},
			RedirectURL: redirectURI,
			Scopes:      signInScopes(r.Scopes, r.Metadata),
		},
	}
}

// serve serves the callback on lns until the returned function is called,
// which closes the listeners at once and waits (briefly) for the callback
// handler to finish writing its page.
func (f *browserFlow) serve(lns []net.Listener) (shutdown func()) {
	srv := &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute, // the handler waits for the token exchange
		BaseContext:       func(net.Listener) context.Context { return f.ctx },
	}
	for _, ln := range lns {
		go srv.Serve(ln) // returns http.ErrServerClosed on Shutdown
	}
	return func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(f.ctx), 2*time.Second)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}
}

// authURL is the authorization request
// (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1) with the PKCE
// challenge (https://www.rfc-editor.org/rfc/rfc7636#section-4.3) and the
// nonce.
//
// https://openid.net/specs/openid-connect-core-1_0.html#OfflineAccess:
// "the Authorization Server ... MUST ignore the offline_access request
// unless the Client is using a response_type value that would result in an
// Authorization Code being returned" and "MUST ensure that the prompt
// parameter contains consent unless other conditions for processing the
// request permitting offline access to the requested resources are in
// place" — so ask for consent explicitly.
func (f *browserFlow) authURL() string {
	return f.cfg.AuthCodeURL(f.state,
		oauth2.S256ChallengeOption(f.verifier),
		oauth2.SetAuthURLParam("nonce", f.nonce),
		oauth2.SetAuthURLParam("prompt", "consent"),
	)
}

// listenLoopback listens on a random port of the loopback interface. For
// host "localhost" it listens on 127.0.0.1 and, when the system has IPv6,
// on ::1 with the same port, since the browser may resolve localhost to
// either (https://www.rfc-editor.org/rfc/rfc8252#section-8.3). For an IP
// literal host it listens on that address only.
func listenLoopback(host string) ([]net.Listener, int, error) {
	switch host {
	case "localhost":
	case "127.0.0.1", "::1", "[::1]":
		ln, err := net.Listen("tcp", net.JoinHostPort(strings.Trim(host, "[]"), "0"))
		if err != nil {
			return nil, 0, fmt.Errorf("listen on loopback: %w", err)
		}
		return []net.Listener{ln}, ln.Addr().(*net.TCPAddr).Port, nil
	default:
		return nil, 0, fmt.Errorf("redirect host %q: want localhost or 127.0.0.1", host)
	}
	for range 5 {
		ln4, err4 := net.Listen("tcp", "127.0.0.1:0")
		if err4 != nil {
			ln6, err6 := net.Listen("tcp", "[::1]:0")
			if err6 != nil {
				return nil, 0, fmt.Errorf("listen on loopback: %w", errors.Join(err4, err6))
			}
			return []net.Listener{ln6}, ln6.Addr().(*net.TCPAddr).Port, nil
		}
		port := ln4.Addr().(*net.TCPAddr).Port
		ln6, err6 := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err6 == nil {
			return []net.Listener{ln4, ln6}, port, nil
		}
		if !isAddrInUse(err6) {
			return []net.Listener{ln4}, port, nil // no IPv6 loopback here
		}
		ln4.Close() // the port is taken on ::1: try another
	}
	return nil, 0, errors.New("listen on loopback: no port free on both 127.0.0.1 and ::1")
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// browserFlow is one browser sign-in: the authorization request, the
// per-flow secrets and the callback handler.
type browserFlow struct {
	r        signInRequest
	ctx      context.Context // the flow's context (timeout included)
	cfg      oauth2.Config   // builds the authorization URL
	state    string          // secret: CSRF binding of the authorization response
	nonce    string          // secret: binds the ID token to this request
	verifier string          // secret: PKCE code verifier

	claimed atomic.Bool         // set by the first callback, which decides the outcome
	forged  atomic.Int32        // callbacks refused for a missing or wrong state
	done    chan browserOutcome // receives exactly one outcome (buffered)
}

type browserOutcome struct {
	res signInResult
	err error
}

// ServeHTTP serves GET /callback; everything else is 404 (405 for other
// methods on /callback).
func (f *browserFlow) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != callbackPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if f.refuseForged(w, req.URL.Query()) {
		return
	}
	if !f.claimed.CompareAndSwap(false, true) {
		writePage(w, http.StatusGone, page{
			Title:   "Sign-in already finished",
			Message: "This sign-in has already finished.",
			Next:    "Return to your terminal; to sign in again, run the login again.",
			Account: f.r.Account,
		})
		return
	}
	res, err := f.callback(req.URL.Query())
	if err != nil {
		status, p := errorPage(f.r, err)
		writePage(w, status, p)
	} else {
		writePage(w, http.StatusOK, page{
			OK:      true,
			Title:   "Signed in",
			Server:  displayServer(res),
			User:    res.Username,
			Account: f.r.Account,
		})
	}
	f.done <- browserOutcome{res, err}
}

// callback checks an authorization response
// (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2) and exchanges its
// code.
func (f *browserFlow) callback(q url.Values) (signInResult, error) {
	// https://www.rfc-editor.org/rfc/rfc6749#section-10.12: "The client
	// MUST implement CSRF protection for its redirection URI ... by
	// requiring any request sent to the redirection URI endpoint to include
	// a value that binds the request to the user-agent's authenticated
	// state". Error responses carry state as well (section 4.1.2.1), so
	// state is checked first: a forged error is as unwelcome as a forged code.
	if got := q.Get("state"); got == "" || !equalSecret(got, f.state) {
		return signInResult{}, fmt.Errorf("browser sign-in: the authorization response does not carry this sign-in's state: %w", ErrSignInState)
	}
	// https://www.rfc-editor.org/rfc/rfc9207#section-2.4: "Clients MUST
	// then decode the value from its application/x-www-form-urlencoded form
	// ... and compare the result to the issuer identifier of the
	// authorization server where the authorization request was sent to ...
	// If the value does not match the expected issuer identifier, clients
	// MUST reject the authorization response" and "If the authorization
	// server's metadata indicates support for the iss parameter
	// (authorization_response_iss_parameter_supported: true), clients MUST
	// reject authorization responses without the iss parameter".
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != f.r.issuer() {
			return signInResult{}, fmt.Errorf("browser sign-in: the authorization response comes from issuer %q, not %q: %w", untrusted.Text(strings.Join(iss, " "), 200), f.r.issuer(), ErrSignInState)
		}
	} else if f.r.Metadata.AuthorizationResponseIssParam {
		return signInResult{}, fmt.Errorf("browser sign-in: the authorization response carries no iss although the issuer announces it: %w", ErrSignInState)
	}
	if code := q.Get("error"); code != "" {
		// https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1
		e := &broker.IdPError{Op: "authorization", Code: untrusted.Text(code, 64), Description: untrusted.Text(q.Get("error_description"), 300)}
		if code == "access_denied" {
			return signInResult{}, fmt.Errorf("browser sign-in: %w: %w", ErrSignInDenied, e)
		}
		return signInResult{}, fmt.Errorf("browser sign-in: %w", e)
	}
	code := q.Get("code")
	if code == "" {
		return signInResult{}, errors.New("browser sign-in: the authorization response carries neither a code nor an error")
	}

	// https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3 (redirect_uri
	// "REQUIRED, if the "redirect_uri" parameter was included in the
	// authorization request") and
	// https://www.rfc-editor.org/rfc/rfc7636#section-4.5 (code_verifier).
	tr, err := f.r.idp.ExchangeCode(f.ctx, code, f.cfg.RedirectURL, f.verifier)
	if err != nil {
		if f.ctx.Err() != nil {
			return signInResult{}, fmt.Errorf("browser sign-in: exchange code: %w", f.ctx.Err())
		}
		return signInResult{}, fmt.Errorf("browser sign-in: %w", err)
	}
	return finishOIDC(f.ctx, f.r, tr, f.nonce, "browser sign-in")
}

// displayServer names the server a sign-in reached, for the success page.
func displayServer(res signInResult) string {
	for _, s := range []string{res.Server, res.Issuer} {
		if s != "" {
			return hostOf(s)
		}
	}
	return "your server"
}

//go:embed signin_page.html
var pageHTML string

// pageTemplate is parsed on first use: every ncagent process links it, few
// show it.
var pageTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(pageHTML))
})

// page is what the browser is shown at the end of a sign-in. It never holds
// a secret.
type page struct {
	OK          bool
	Title       string
	Server      string // success
	User        string // success
	Message     string // failure: what happened
	Code        string // failure: the IdP's error code, if any
	Description string // failure: the IdP's error description, if any
	Next        string // failure: what to do next
	Account     string
}

// errorPage turns a sign-in error into a status and a page.
func errorPage(r signInRequest, err error) (int, page) {
	p := page{Title: "Sign-in failed", Account: r.Account,
		Next: "Return to your terminal and run the login again."}
	var idp *broker.IdPError
	if errors.As(err, &idp) {
		p.Code, p.Description = idp.Code, idp.Description
	}
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrSignInState):
		p.Title = "Sign-in refused"
		p.Message = "This response does not belong to the sign-in ncagent started, or it did not come from the expected identity provider. " +
			"Someone may have tried to slip their own sign-in into yours, so nothing was kept."
		p.Next = "Close this tab, return to your terminal and run the login again. If this keeps happening, tell your administrator."
		status = http.StatusForbidden
	case errors.Is(err, ErrSignInDenied):
		p.Title = "Sign-in denied"
		p.Message = "Access was not granted, so ncagent was not signed in."
		p.Next = "If that was a mistake, return to your terminal, run the login again and allow access."
		status = http.StatusForbidden
	case errors.Is(err, ErrNoRefreshToken):
		p.Message = "The identity provider did not grant offline access, which ncagent needs to keep you signed in."
		p.Next = fmt.Sprintf("Ask your administrator to allow the offline_access scope for client %q, then run the login again.", r.ClientID)
	case errors.Is(err, ErrIDToken):
		p.Message = "The identity provider's answer could not be verified."
		p.Next = "Check the issuer URL and client id configured for this account, then run the login again."
	case idp != nil:
		p.Message = "The identity provider refused the sign-in."
		status = http.StatusBadGateway
	case errors.Is(err, broker.ErrUnavailable):
		p.Message = "ncagent could not reach the identity provider to finish the sign-in."
		p.Next = "Check your network connection, then return to your terminal and run the login again."
		status = http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		p.Message = "The sign-in was abandoned before it finished."
		status = http.StatusGatewayTimeout
	default:
		p.Message = "The sign-in could not be completed."
		status = http.StatusInternalServerError
	}
	return status, p
}

// writePage writes p as a self-contained HTML page: no scripts, no external
// resources, not cached, not framed.
func writePage(w http.ResponseWriter, status int, p page) {
	var buf bytes.Buffer
	if err := pageTemplate().Execute(&buf, p); err != nil {
		http.Error(w, p.Title, status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
