package proxy

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxReplayBody is the default Options.MaxReplayBody.
const DefaultMaxReplayBody = 64 << 10

// Options configure a Proxy.
type Options struct {
	// Credentials supplies the account's Authorization; required.
	Credentials Credentials
	// Logger receives one record per request (session, method, path,
	// status) and every refusal; nil discards.
	Logger *slog.Logger
	// MaxReplayBody is the largest request body kept so that the request
	// can be sent again after a 401 on a Bearer; larger and chunked
	// bodies stream and are not replayed. Default DefaultMaxReplayBody;
	// negative: never keep a body.
	MaxReplayBody int64
}

// Proxy is the exec loopback proxy. See the package documentation for its
// contract. Its methods are safe for concurrent use.
type Proxy struct {
	opts Options
	log  *slog.Logger
	rp   *httputil.ReverseProxy
	hs   *http.Server

	// checkPeer refuses a connection whose peer is another user; tests
	// replace it.
	checkPeer func(c net.Conn) error

	ready chan struct{} // closed once Run serves

	mu       sync.Mutex // guards sessions, addr, closed
	sessions map[[32]byte]*Session
	addr     string // host:port served; "" before Run
	closed   bool
}

// New returns a Proxy. Call Run to serve.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxReplayBody == 0 {
		opts.MaxReplayBody = DefaultMaxReplayBody
	}
	p := &Proxy{opts: opts, log: opts.Logger, sessions: map[[32]byte]*Session{},
		checkPeer: samePeerUser, ready: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      &injector{p: p},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	p.hs = &http.Server{
		Handler: http.HandlerFunc(p.serveHTTP),
		// No ReadTimeout or WriteTimeout: bodies of any size stream.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return p
}

// Listen opens the proxy's listener on 127.0.0.1 with a port the kernel
// picks.
func Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: listen on loopback: %w", err)
	}
	return ln, nil
}

// Run serves on ln, which must be a loopback TCP listener, until ctx is
// done or Close is called; then it closes every connection and forgets
// every session. It returns nil after a shutdown.
func (p *Proxy) Run(ctx context.Context, ln net.Listener) error {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("proxy: serve %s: not a loopback TCP address", ln.Addr())
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return nil
	}
	p.addr = ta.String()
	p.mu.Unlock()
	close(p.ready)
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer stop()
	err := p.hs.Serve(&peerListener{Listener: ln, p: p})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("proxy: serve %s: %w", ta, err)
}

// Ready is closed once Run serves: Open fails before.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Close stops Run and forgets every session. It is safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.sessions = map[[32]byte]*Session{}
	p.mu.Unlock()
	return p.hs.Close()
}

// host returns the host:port the proxy serves, "" before Run.
func (p *Proxy) host() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// peerListener refuses connections of other users before any byte is read.
type peerListener struct {
	net.Listener
	p *Proxy
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if err := l.p.checkPeer(c); err != nil {
			l.p.log.Warn("proxy: refused connection", "peer", c.RemoteAddr().String(), "err", err)
			c.Close()
			continue
		}
		return c, nil
	}
}

// reqInfo travels in a request's context from serveHTTP to the transport
// and the response hooks.
type reqInfo struct {
	s      *Session
	status int
	err    error
}

type infoKey struct{}

// serveHTTP checks Host and the session credential, forwards, and logs.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends
	// Host: evil.example:port; only our own address is accepted.
	if !strings.EqualFold(r.Host, p.host()) {
		p.log.Warn("proxy: refused request for a foreign host", "host", r.Host, "method", r.Method, "path", r.URL.Path)
		http.Error(w, "ncagent: this proxy answers only for "+p.host(), http.StatusMisdirectedRequest)
		return
	}
	s := p.authenticate(r)
	if s == nil {
		p.log.Warn("proxy: refused request without a valid session credential", "method", r.Method, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Basic realm="ncagent exec", charset="UTF-8"`)
		http.Error(w, "ncagent: no valid session credential: use NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD from ncagent exec", http.StatusUnauthorized)
		return
	}
	s.reqs.Add(1)
	info := &reqInfo{s: s}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	attrs := []any{"session", s.ID, "account", s.Spec.Account, "method", r.Method, "path", r.URL.Path,
		"status", info.status, "duration", time.Since(start).Round(time.Microsecond)}
	if info.err != nil {
		attrs = append(attrs, "err", info.err.Error())
		p.log.Warn("proxy: request", attrs...)
		return
	}
	p.log.Info("proxy: request", attrs...)
}

// authenticate returns the session whose credential r carries: as the
// Basic password with the session's user name, or as a Bearer token.
func (p *Proxy) authenticate(r *http.Request) *Session {
	scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok {
		return nil
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return p.lookup(strings.TrimSpace(rest))
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return nil
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil
		}
		s := p.lookup(pass)
		if s == nil || user != s.up.Username {
			return nil
		}
		return s
	}
	return nil
}

func sortStatus(list []Status) {
	slices.SortFunc(list, func(a, b Status) int {
		return cmp.Or(a.Opened.Compare(b.Opened), strings.Compare(a.ID, b.ID))
	})
}
