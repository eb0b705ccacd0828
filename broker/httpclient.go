package broker

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/buildinfo"
)

// Timeouts of clients made by NewHTTPClient.
const (
	connectTimeout      = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	defaultHTTPTimeout  = 30 * time.Second
	maxRedirects        = 5
)

// ErrRedirect is wrapped by the error a client made by NewHTTPClient returns
// when a request other than GET or HEAD is answered with a redirect: a POST
// to a token, revocation or device endpoint carries secrets and is never
// re-sent to another location.
var ErrRedirect = errors.New("refused to follow redirect")

// RedirectError reports a refused redirect. It names the status and the
// target (scheme, host and path only; the query is dropped) and never holds
// a request or response body.
type RedirectError struct {
	Method     string
	StatusCode int
	From       string
	Location   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("%s %s: server answered HTTP %d redirecting to %s: %v (requests carrying credentials are not re-sent)",
		e.Method, e.From, e.StatusCode, e.Location, ErrRedirect)
}

func (e *RedirectError) Unwrap() error { return ErrRedirect }

// NewHTTPClient returns the HTTP client ncagent uses to talk to identity
// providers and Nextcloud servers:
//   - connect timeout 10s, TLS handshake timeout 10s, overall per-request
//     timeout o.Timeout (default 30s);
//   - the system CA pool plus o.CAPEM, when given (an error if CAPEM holds
//     no certificate);
//   - TLS 1.2 or newer;
//   - User-Agent o.UserAgent (default buildinfo.UserAgent()) on every request
//     that does not set one;
//   - redirects are followed only for GET and HEAD (at most 5); any other
//     method, in practice a POST carrying a secret, gets an error wrapping
//     ErrRedirect (a *RedirectError) instead, and the redirect response body
//     is discarded.
//
// The client is safe for concurrent use. Callers that need one client per
// CA bundle should reuse it; the Broker does.
func NewHTTPClient(o HTTPOptions) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(o.CAPEM) > 0 {
		if !pool.AppendCertsFromPEM(o.CAPEM) {
			return nil, errors.New("http client: extra CA bundle holds no PEM certificate")
		}
	}
	ua := o.UserAgent
	if ua == "" {
		ua = buildinfo.UserAgent()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     &secureTransport{base: tr, ua: ua},
		Timeout:       timeout,
		CheckRedirect: checkRedirect,
	}, nil
}

// checkRedirect bounds the redirects of GET and HEAD and holds every
// redirect target to the rules of the first URL: other methods never get
// here (secureTransport turns their redirects into errors first, so the
// http.Client's error names the original URL, not the target's query).
//
// net/http keeps Authorization on a redirect to the same host or a
// subdomain whatever the scheme, so an https server answering 301 with an
// http:// Location on its own name would receive the credential in clear.
// Here every target must pass CheckEndpointURL (https, or http on a
// loopback host), an https chain never continues over http, and a target
// on another host or scheme than the first request gets no credential
// (Authorization, Cookie, user info).
func checkRedirect(req *http.Request, via []*http.Request) error {
	orig := via[0]
	if orig.Method != http.MethodGet && orig.Method != http.MethodHead {
		re := &RedirectError{Method: orig.Method, From: redactURL(orig.URL), Location: redactURL(req.URL)}
		if req.Response != nil {
			re.StatusCode = req.Response.StatusCode
		}
		return re
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("%s %s: stopped after %d redirects", orig.Method, redactURL(orig.URL), len(via))
	}
	refuse := func(why string) error {
		re := &RedirectError{Method: orig.Method, From: redactURL(orig.URL), Location: redactURL(req.URL)}
		if req.Response != nil {
			re.StatusCode = req.Response.StatusCode
		}
		return fmt.Errorf("%w (%s)", re, why)
	}
	if err := CheckEndpointURL("redirect target", req.URL.String()); err != nil {
		return refuse("the target is neither https nor loopback http")
	}
	for _, r := range via {
		if r.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return refuse("https never continues over http")
		}
	}
	if !strings.EqualFold(req.URL.Host, orig.URL.Host) || req.URL.Scheme != orig.URL.Scheme {
		req.Header.Del("Authorization")
		req.Header.Del("Cookie")
		req.Header.Del("Proxy-Authorization")
		req.URL.User = nil
	}
	return nil
}

// redactURL returns scheme://host/path of u: queries and user info may hold
// codes or secrets.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

// secureTransport sets the User-Agent header on requests that have none
// and refuses redirects of requests other than GET and HEAD.
type secureTransport struct {
	base http.RoundTripper
	ua   string
}

func (t *secureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		// A RoundTripper must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.ua)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodGet || req.Method == http.MethodHead {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		re := &RedirectError{Method: req.Method, StatusCode: resp.StatusCode, From: redactURL(req.URL)}
		if loc, lerr := resp.Location(); lerr == nil {
			re.Location = redactURL(loc)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, re
	}
	return resp, nil
}

// clientFor returns the Broker's shared client for a CA bundle, creating it
// on first use: one client (and connection pool) per distinct bundle.
func (b *Broker) clientFor(caPEM []byte) (*http.Client, error) {
	if b.httpClient != nil {
		return b.httpClient, nil
	}
	key := sha256.Sum256(caPEM)
	b.clientsMu.Lock()
	defer b.clientsMu.Unlock()
	if c, ok := b.clients[key]; ok {
		return c, nil
	}
	c, err := NewHTTPClient(HTTPOptions{CAPEM: caPEM, UserAgent: b.userAgent})
	if err != nil {
		return nil, err
	}
	b.clients[key] = c
	return c, nil
}

// CheckEndpointURL accepts https URLs, and http URLs on a loopback host
// (local test servers, a Nextcloud on the same machine): check every URL a
// credential is sent to with it, so that no secret travels in clear text
// over a network. what names the URL in the error; the error quotes the
// URL without query or user info, unless it does not parse at all.
func CheckEndpointURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, raw, err)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%s %q: want an https URL (http only on a loopback host)", what, redactURL(u))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
