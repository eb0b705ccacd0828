package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server defaults; ServerOptions fields left zero take these.
const (
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultMaxConns     = 64

	// maxHeaderBytes bounds the request line and headers.
	maxHeaderBytes = 8 << 10
	// shutdownGrace bounds how long Run waits for in-flight requests.
	shutdownGrace = 5 * time.Second
	// maxLoginDuration bounds a POST /v1/login stream.
	maxLoginDuration = 30 * time.Minute
	// maxHintLog bounds how much of client_hint reaches the log.
	maxHintLog = 128
)

// ServerOptions configure a Server. Zero values take the defaults.
type ServerOptions struct {
	// Logger receives warnings about refused peers, backend errors and one
	// info record per credential handed out (metadata only, never a token).
	// Nil means slog.Default().
	Logger *slog.Logger
	// ReadTimeout bounds reading one request, headers and body; a client
	// that sends half a request and stalls is cut off after it.
	ReadTimeout time.Duration
	// WriteTimeout bounds one request from the end of its headers to the
	// end of its response; handlers run with a context ending a little
	// before it. The login stream extends it per event.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests.
	IdleTimeout time.Duration
	// MaxConns caps concurrent connections (default 64). A connection over
	// the cap waits briefly for a slot, then is closed.
	MaxConns int
	// Socket is the path served, reported in status and logs.
	Socket string
}

// Server serves wire protocol v1 to processes of the current user. Every
// accepted connection has its peer credentials checked before any byte is
// read or written; a peer of another user, or whose credentials are
// unknown, is closed at once.
type Server struct {
	b    Backend
	log  *slog.Logger
	opts ServerOptions
	hs   *http.Server

	// Hooks, fixed at construction; tests replace them.
	peerCred   func(net.Conn) (Peer, error)
	allow      func(Peer) error
	connWait   time.Duration // how long a connection over MaxConns waits
	noFastLane bool          // hand every connection to net/http

	// shutdownCtx is cancelled when shutdown starts (Run's ctx done, or
	// Close); it ends login streams, which could otherwise hold shutdown
	// for their whole duration.
	shutdownCtx    context.Context
	shutdownCancel context.CancelFunc
	// closeCtx is cancelled by Close; fast-lane requests run under it.
	closeCtx    context.Context
	closeCancel context.CancelFunc

	// handoff feeds hs the connections the fast lane passes on.
	handoff *handoffListener
	// inShutdown is set when shutdown starts: idle fast-lane connections
	// are closed, busy ones close after their response.
	inShutdown atomic.Bool

	mu      sync.Mutex // guards ln, conns, closed
	ln      *peerListener
	conns   map[*fastConn]struct{} // open fast-lane connections
	closed  bool                   // Close was called
	closeCh chan struct{}          // closed by Close

	connWG   sync.WaitGroup // fast-lane connection goroutines
	closeErr error          // set once, by Close; guarded by mu
}

// peerKey is the context key under which ConnContext stores the Peer.
type peerKey struct{}

// NewServer returns a Server handing requests to b. Call Run to serve.
func NewServer(b Backend, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	s := &Server{
		b:        b,
		log:      opts.Logger,
		opts:     opts,
		peerCred: peerCred,
		allow:    isSelf,
		connWait: time.Second,
		handoff:  &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})},
		conns:    map[*fastConn]struct{}{},
		closeCh:  make(chan struct{}),
	}
	s.shutdownCtx, s.shutdownCancel = context.WithCancel(context.Background())
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: opts.ReadTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*handoffConn); ok {
				return context.WithValue(ctx, peerKey{}, hc.peer)
			}
			return ctx // no Peer: every handler refuses
		},
	}
	s.hs.RegisterOnShutdown(s.shutdownCancel)
	return s
}

// Run serves on ln until ctx is done or Close is called, then stops
// accepting, lets in-flight requests finish (at most 5 s; login streams
// are cancelled at once) and closes ln, which removes a socket file Listen
// created. Run returns nil after a shutdown and the error otherwise. Run
// must be called at most once.
//
// Requests for the JSON endpoints that use plain HTTP/1.1 framing are
// served by a lean loop on each connection (the fast lane); a connection
// whose request needs anything more (login streams, chunked bodies,
// Expect, unknown paths, malformed or oversized heads) is handed to a
// net/http server for the rest of its life. Both give the same answers.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	pl := &peerListener{Listener: ln, s: s, sem: make(chan struct{}, s.opts.MaxConns), done: make(chan struct{})}
	defer pl.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.ln = pl
	s.mu.Unlock()
	s.log.Debug("ipc: serving", "socket", s.opts.Socket, "max_conns", s.opts.MaxConns)

	hsDone := make(chan error, 1)
	go func() { hsDone <- s.hs.Serve(s.handoff) }()
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop(pl) }()

	var err error
	select {
	case err = <-acceptDone:
		acceptDone <- err // for the wait below
	case err = <-hsDone:
		hsDone <- err
	case <-ctx.Done():
	case <-s.closeCh:
	}
	s.shutdown()
	if aerr := <-acceptDone; err == nil {
		err = aerr
	}
	if herr := <-hsDone; err == nil && !errors.Is(herr, http.ErrServerClosed) {
		err = herr
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("ipc: serve %s: %w", s.opts.Socket, err)
	}
	return nil
}

// acceptLoop accepts connections (the listener checks peers and caps
// their number) and serves each on its own goroutine. It returns when the
// listener is closed, or on an error that is not temporary.
func (s *Server) acceptLoop(pl *peerListener) error {
	var backoff time.Duration
	for {
		c, err := pl.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("ipc: accept failed, retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-pl.done:
					return nil
				}
			}
			select {
			case <-pl.done:
				return nil
			default:
				return err
			}
		}
		backoff = 0
		pc := c.(*peerConn)
		fc := &fastConn{s: s, pc: pc}
		s.mu.Lock()
		if s.inShutdown.Load() {
			s.mu.Unlock()
			pc.Close()
			continue
		}
		s.conns[fc] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go fc.serve()
	}
}

// shutdown stops accepting, closes idle connections, and waits up to
// shutdownGrace for busy ones before closing them too.
func (s *Server) shutdown() {
	s.shutdownCancel() // ends login streams
	s.mu.Lock()
	s.inShutdown.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	s.handoff.Close() // hs.Shutdown closes it too, if Serve got to run
	for fc := range s.conns {
		fc.closeIfIdle()
	}
	s.mu.Unlock()

	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	hsErr := make(chan error, 1)
	go func() { hsErr <- s.hs.Shutdown(sctx) }()
	fastDone := make(chan struct{})
	go func() { s.connWG.Wait(); close(fastDone) }()
	select {
	case <-fastDone:
	case <-sctx.Done():
	}
	if err := <-hsErr; err != nil || sctx.Err() != nil {
		s.log.Warn("ipc: shutdown: requests still running after grace period, closing", "err", err)
		s.Close()
	}
	<-fastDone
}

// Close stops the server at once: the listener and every connection are
// closed. It is safe to call more than once and concurrently with Run.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	close(s.closeCh)
	s.inShutdown.Store(true)
	s.shutdownCancel()
	s.closeCancel()
	if s.ln != nil {
		s.ln.Close()
	}
	s.handoff.Close()
	for fc := range s.conns {
		fc.pc.Close()
	}
	s.closeErr = s.hs.Close()
	return s.closeErr
}

// peerListener checks the peer of each accepted connection before handing
// it to http.Server, and caps concurrent connections.
type peerListener struct {
	net.Listener
	s         *Server
	sem       chan struct{} // one token per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *peerListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := l.s.peerCred(c)
		if err == nil {
			err = l.s.allow(p)
		} else {
			p = Peer{UID: -1}
		}
		if err != nil {
			c.Close()
			l.s.log.Warn("ipc: refused connection", "peer_uid", p.UID, "peer_pid", p.PID, "peer_exe", p.Exe, "err", err)
			continue
		}
		if !l.acquire() {
			c.Close()
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			l.s.log.Warn("ipc: refused connection: too many connections", "max_conns", cap(l.sem), "peer_pid", p.PID, "peer_exe", p.Exe)
			continue
		}
		return &peerConn{Conn: c, peer: p, release: l.release}, nil
	}
}

// acquire takes a connection slot, waiting up to connWait.
func (l *peerListener) acquire() bool {
	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(l.s.connWait)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-l.done:
		return false
	}
}

func (l *peerListener) release() { <-l.sem }

// peerConn is an accepted connection whose peer passed the check.
type peerConn struct {
	net.Conn
	peer      Peer
	release   func()
	closeOnce sync.Once
}

func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}

// endpoint is a v1 endpoint answering with one JSON document. call decodes
// body (already bounded by MaxBodyBytes), asks the backend and returns the
// status and the document to send. base is the request's context: the
// client going away (net/http lane) or Close cancels it.
type endpoint struct {
	method string
	call   func(s *Server, base context.Context, peer Peer, body []byte) (int, any)
}

// endpoints are the JSON endpoints; /v1/login streams and is routed apart.
var endpoints = map[string]endpoint{
	"/v1/status":   {http.MethodGet, (*Server).status},
	"/v1/token":    {http.MethodPost, (*Server).token},
	"/v1/exchange": {http.MethodPost, (*Server).exchange},
	"/v1/revoke":   {http.MethodPost, (*Server).revoke},
}

// serveHTTP routes a request handed to net/http. The paths and methods are
// the v1 contract.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = []string{"no-store"}
	peer, ok := r.Context().Value(peerKey{}).(Peer)
	if !ok {
		// Defence in depth: the listener wrapper should make this impossible.
		s.log.Error("ipc: request without peer credentials", "path", r.URL.Path)
		writeError(w, &Error{Code: CodeForbidden, Message: "peer credentials unknown"})
		return
	}
	want := http.MethodPost
	ep, isJSON := endpoints[r.URL.Path]
	switch {
	case isJSON:
		want = ep.method
	case r.URL.Path == "/v1/login":
	default:
		writeError(w, &Error{Code: CodeNotFound, Message: "no such endpoint: " + strconv.Quote(r.URL.Path)})
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeError(w, &Error{Code: CodeMethod, Message: r.URL.Path + " wants " + want})
		return
	}
	if !isJSON {
		s.handleLogin(w, r, peer)
		return
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer bodyPool.Put(buf)
	buf.Reset()
	if e := readBody(w, r, buf); e != nil {
		writeError(w, e)
		return
	}
	status, v := ep.call(s, r.Context(), peer, buf.Bytes())
	writeJSON(w, status, v)
}

// requestContext bounds a backend call by WriteTimeout minus a margin, so a
// slow backend yields 504 timeout while the response can still be written.
func (s *Server) requestContext(base context.Context) (context.Context, context.CancelFunc) {
	margin := min(s.opts.WriteTimeout/10, time.Second)
	return context.WithTimeout(base, s.opts.WriteTimeout-margin)
}

// readBody reads the request body into buf, at most MaxBodyBytes. Once the
// body is read the read deadline is lifted: from then on the connection is
// only watched for the client going away, which cancels the request
// context.
func readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) *Error {
	if r.ContentLength > MaxBodyBytes {
		return tooLarge()
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		return invalid("reading body: " + err.Error())
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	return nil
}

// decodeRequest decodes body into v (one of the request types) and
// validates it. decodeBody copies what it keeps, so body may be reused
// afterwards.
func decodeRequest(body []byte, v interface{ validate() *Error }, emptyOK bool) *Error {
	if r, ok := v.(*TokenRequest); ok && decodeTokenRequest(body, r) {
		return r.validate()
	}
	if e := decodeBody(body, v, emptyOK); e != nil {
		return e
	}
	return v.validate()
}

// bodyPool holds request body buffers (at most MaxBodyBytes plus the
// growth slack of one read each).
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func tooLarge() *Error {
	return &Error{Code: CodeTooLarge, Message: "body larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"}
}

// wireError turns a backend error into the wire error to send, logging
// errors that are not the client's. base is the request's context.
func (s *Server) wireError(base context.Context, op, account string, err error) *Error {
	if we, ok := errors.AsType[*Error](err); ok {
		out := *we
		out.Status = we.HTTPStatus()
		return &out
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("ipc: backend timed out", "op", op, "account", account)
		return &Error{Code: CodeTimeout, Message: op + ": the agent did not answer in time", Account: account}
	}
	if s.shutdownCtx.Err() != nil && errors.Is(err, context.Canceled) {
		s.log.Info("ipc: request cancelled by shutdown", "op", op, "account", account)
		return &Error{Code: CodeInternal, Message: op + ": the agent is shutting down", Account: account}
	}
	if base.Err() != nil {
		s.log.Debug("ipc: client went away", "op", op, "account", account)
		return &Error{Code: CodeTimeout, Message: op + ": request cancelled", Account: account}
	}
	// By contract backend errors carry no secrets; log the detail here and
	// send a generic message.
	s.log.Error("ipc: backend error", "op", op, "account", account, "err", err)
	return &Error{Code: CodeInternal, Message: op + ": internal error, see the agent log", Account: account}
}

// failed is the result of an endpoint call that ends in e.
func failed(e *Error) (int, any) { return e.HTTPStatus(), e }

func (s *Server) status(base context.Context, _ Peer, _ []byte) (int, any) {
	ctx, cancel := s.requestContext(base)
	defer cancel()
	resp, err := s.b.Status(ctx)
	if err != nil {
		return failed(s.wireError(base, "status", "", err))
	}
	if resp.Socket == "" {
		resp.Socket = s.opts.Socket
	}
	if resp.Accounts == nil {
		resp.Accounts = []AccountStatus{}
	}
	return http.StatusOK, &resp
}

func (s *Server) token(base context.Context, peer Peer, body []byte) (int, any) {
	var req TokenRequest
	if e := decodeRequest(body, &req, true); e != nil {
		return failed(e)
	}
	ctx, cancel := s.requestContext(base)
	defer cancel()
	resp, err := s.b.Token(ctx, peer, req)
	if err != nil {
		return failed(s.wireError(base, "token", req.Account, err))
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "ipc: token issued", slog.String("account", resp.Account),
			slog.Int("peer_pid", peer.PID), slog.String("peer_exe", peer.Exe), slog.String("client_hint", clip(req.ClientHint)),
			slog.String("audience", req.Audience), slog.String("scopes", resp.Scope),
			slog.String("token_type", resp.TokenType), slog.Time("expires_at", resp.ExpiresAt))
	}
	return http.StatusOK, &resp
}

func (s *Server) exchange(base context.Context, peer Peer, body []byte) (int, any) {
	var req ExchangeRequest
	if e := decodeRequest(body, &req, false); e != nil {
		return failed(e)
	}
	ctx, cancel := s.requestContext(base)
	defer cancel()
	resp, err := s.b.Exchange(ctx, peer, req)
	if err != nil {
		return failed(s.wireError(base, "exchange", req.Account, err))
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "ipc: token exchanged", slog.String("account", resp.Account),
			slog.Int("peer_pid", peer.PID), slog.String("peer_exe", peer.Exe), slog.String("client_hint", clip(req.ClientHint)),
			slog.String("audience", req.Audience), slog.String("scopes", resp.Scope),
			slog.String("issued_token_type", resp.IssuedTokenType), slog.Bool("delegation", req.ActorToken != ""),
			slog.Time("expires_at", resp.ExpiresAt))
	}
	return http.StatusOK, &resp
}

func (s *Server) revoke(base context.Context, peer Peer, body []byte) (int, any) {
	var req RevokeRequest
	if e := decodeRequest(body, &req, false); e != nil {
		return failed(e)
	}
	ctx, cancel := s.requestContext(base)
	defer cancel()
	resp, err := s.b.Revoke(ctx, peer, req)
	if err != nil {
		return failed(s.wireError(base, "revoke", req.Account, err))
	}
	s.log.Info("ipc: revoked", "account", req.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
		"where", resp.Where, "server_revoked", resp.ServerRevoked, "secret_deleted", resp.SecretDeleted)
	return http.StatusOK, &resp
}

// handleLogin streams LoginEvents as newline-delimited JSON, one flushed
// line per event, ending with a "done" or "error" event built from the
// backend's result. An error before the first event is a plain error
// response. The write deadline is extended per event; the client going
// away, or the server shutting down, cancels the backend's context.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, peer Peer) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	e := readBody(w, r, buf)
	var req LoginRequest
	if e == nil {
		e = decodeRequest(buf.Bytes(), &req, false)
	}
	bodyPool.Put(buf)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxLoginDuration)
	defer cancel()
	stop := context.AfterFunc(s.shutdownCtx, cancel)
	defer stop()

	rc := http.NewResponseController(w)
	var (
		mu       sync.Mutex // guards started, ended, writeErr and writes to w
		started  bool
		ended    bool
		writeErr error
	)
	emit := func(ev LoginEvent) { // with mu held
		if writeErr != nil {
			return
		}
		if ev.Account == "" {
			ev.Account = req.Account
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		b, err := json.Marshal(ev)
		if err == nil {
			_, err = w.Write(append(b, '\n'))
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			writeErr = err
			cancel() // the client is gone: stop the sign-in
		}
	}
	progress := func(ev LoginEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		if ev.Type == "done" || ev.Type == "error" {
			// Only ipc writes the final event, from Login's result.
			s.log.Warn("ipc: login: backend sent a final event as progress; dropped", "account", req.Account, "type", ev.Type)
			return
		}
		emit(ev)
	}
	final, err := s.b.Login(ctx, peer, req, progress)

	mu.Lock()
	defer mu.Unlock()
	ended = true
	if writeErr != nil {
		s.log.Info("ipc: login: client went away", "account", req.Account, "peer_pid", peer.PID)
		return
	}
	if err != nil {
		we := s.wireError(r.Context(), "login", req.Account, err)
		if !started {
			writeError(w, we)
			return
		}
		emit(LoginEvent{Type: "error", Account: we.Account, Error: we.Code, Message: we.Message})
		return
	}
	final.Type = "done"
	emit(final)
	s.log.Info("ipc: login finished", "account", final.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
		"method", final.Method, "state", final.State)
}

func clip(s string) string {
	if len(s) > maxHintLog {
		return s[:maxHintLog] + "…"
	}
	return s
}

// writeJSON writes v with the headers every response carries.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := appendJSON(nil, v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Code: CodeInternal, Message: "encoding response"})
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.HTTPStatus(), e)
}

// The fast lane serves the JSON endpoints on a lean loop per connection:
// no goroutine per request, no background read, the request read in
// place, the response written with one call. It accepts only a strict
// subset of HTTP/1.1 (RFC 9112, https://www.rfc-editor.org/rfc/rfc9112):
// one of the request lines below, CRLF line ends, exactly one Host,
// framing by at most one Content-Length of digits, no Transfer-Encoding,
// Expect or Upgrade, no obsolete line folding, a head that fits in
// fastBufSize. Anything else, and anything it cannot parse, is left
// unread and the connection is handed to the net/http server, which
// answers it (an error for malformed requests) and serves the rest of the
// connection. So the fast lane never has to decide an odd case.
//
// Unlike net/http it does not watch the connection while the backend
// works: a client that goes away does not cancel its request (a refresh
// it started completes and is cached); the answer is then not delivered.

// fastBufSize is the read buffer of a fast-lane connection. A request
// whose head does not fit is handed to net/http; a larger body (at most
// MaxBodyBytes) is read into a pooled buffer.
const fastBufSize = 4 << 10

// fastLines are the request lines the fast lane serves.
var fastLines = []struct {
	line string
	ep   endpoint
}{
	{"POST /v1/token HTTP/1.1\r\n", endpoints["/v1/token"]},
	{"GET /v1/status HTTP/1.1\r\n", endpoints["/v1/status"]},
	{"POST /v1/exchange HTTP/1.1\r\n", endpoints["/v1/exchange"]},
	{"POST /v1/revoke HTTP/1.1\r\n", endpoints["/v1/revoke"]},
}

// maxFastLine is the length of the longest fast request line.
const maxFastLine = len("POST /v1/exchange HTTP/1.1\r\n")

// Connection states of the fast lane.
const (
	connIdle    int32 = iota // waiting for a request: shutdown may close it
	connBusy                 // reading a request or answering it
	connClosing              // closed by shutdown
)

// fastConn is a connection served by the fast lane.
type fastConn struct {
	s     *Server
	pc    *peerConn
	state atomic.Int32 // connIdle, connBusy or connClosing
	buf   []byte       // read buffer; buf[r:w] is received and not consumed
	r, w  int
	body  []byte // the response body being encoded, reused
	out   []byte // the response being written, reused
	// timed is set once the read deadline of the current request is armed.
	timed bool
}

var fastBufPool = sync.Pool{New: func() any { b := make([]byte, fastBufSize); return &b }}

// closeIfIdle closes the connection unless it is answering a request;
// shutdown calls it with s.mu held.
func (fc *fastConn) closeIfIdle() {
	if fc.state.CompareAndSwap(connIdle, connClosing) {
		fc.pc.Close()
	}
}

// serve runs the fast lane on the connection until the client closes it,
// a timeout, shutdown, or a request the fast lane leaves to net/http.
func (fc *fastConn) serve() {
	s := fc.s
	bp := fastBufPool.Get().(*[]byte)
	fc.buf = *bp
	handedOff := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, fc)
		s.mu.Unlock()
		if !handedOff {
			fc.pc.Close()
		}
		fastBufPool.Put(bp)
		s.connWG.Done()
	}()
	if s.noFastLane {
		handedOff = fc.handOff(nil)
		return
	}
	// ReadTimeout bounds the first request from the accept, as in net/http.
	fc.pc.SetReadDeadline(time.Now().Add(s.opts.ReadTimeout))
	fc.timed = true
	if fc.fill() != readOK {
		return
	}
	for served, lastPOST := false, false; ; served = true {
		if served {
			// As net/http: wait, under IdleTimeout, for 4 bytes of the
			// next request (fewer and the client's close or the timeout
			// end the connection silently), then after a POST drop the
			// CR and LF among them (RFC 9112 section 2.2).
			fc.timed = false
			if fc.w-fc.r < 4 {
				fc.pc.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
				for fc.w-fc.r < 4 {
					if fc.fill() != readOK {
						return
					}
				}
			}
			if lastPOST {
				for i := 0; i < 4 && (fc.buf[fc.r] == '\r' || fc.buf[fc.r] == '\n'); i++ {
					fc.r++
				}
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connBusy) {
			return // closed by shutdown
		}
		req, res := fc.readHead()
		if res == readFailed {
			return
		}
		if res == readEOF || req.handoff {
			handedOff = fc.handOff(nil)
			return
		}
		fc.pc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		body, pooled, res := fc.readBody(req)
		switch res {
		case readFailed:
			return
		case readEOF:
			// A truncated body: net/http answers it as it would (400).
			var partial []byte
			if pooled != nil {
				partial = pooled.Bytes()
			}
			handedOff = fc.handOff(partial)
			return
		}
		lastPOST = req.ep.method == http.MethodPost
		status, v := req.ep.call(s, s.closeCtx, fc.pc.peer, body)
		if pooled != nil {
			bodyPool.Put(pooled)
		}
		closing := req.close || s.inShutdown.Load()
		fc.body, fc.out = appendResponse(fc.body[:0], fc.out[:0], status, v, closing)
		if _, err := fc.pc.Write(fc.out); err != nil || closing {
			return
		}
		if cap(fc.out) > fastBufSize {
			fc.body, fc.out = nil, nil // a large status: do not keep its buffers
		}
		fc.state.Store(connIdle)
		if s.inShutdown.Load() {
			return // shutdown started while busy: it did not close us
		}
	}
}

// readResult says how reading from the connection ended.
type readResult int

const (
	readOK     readResult = iota
	readEOF               // the client closed its side
	readFailed            // a timeout or another error
)

// fill reads what the connection has into the free end of buf, compacting
// it first when needed.
func (fc *fastConn) fill() readResult {
	if fc.r == fc.w {
		fc.r, fc.w = 0, 0
	} else if fc.w == len(fc.buf) && fc.r > 0 {
		fc.w = copy(fc.buf, fc.buf[fc.r:fc.w])
		fc.r = 0
	}
	n, err := fc.pc.Read(fc.buf[fc.w:])
	fc.w += n
	switch {
	case n > 0 || err == nil:
		return readOK
	case errors.Is(err, io.EOF):
		return readEOF
	default:
		return readFailed
	}
}

// arm sets the read deadline for the rest of the current request, once:
// ReadTimeout bounds reading one request.
func (fc *fastConn) arm() {
	if !fc.timed {
		fc.pc.SetReadDeadline(time.Now().Add(fc.s.opts.ReadTimeout))
		fc.timed = true
	}
}

// readHead waits for a complete request head in buf and parses it. A
// request for net/http has req.handoff set. On readEOF the head is
// incomplete: net/http is to answer what was sent.
func (fc *fastConn) readHead() (fastRequest, readResult) {
	for {
		req, complete := parseHead(fc.buf[fc.r:fc.w])
		if complete || req.handoff {
			return req, readOK
		}
		if fc.w-fc.r == len(fc.buf) {
			return fastRequest{handoff: true}, readOK // a head too large for the fast lane
		}
		fc.arm()
		if res := fc.fill(); res != readOK {
			return req, res
		}
	}
}

// readBody returns the body of req, whose head is at buf[r:]. A body that
// does not fit in buf is read into a pooled buffer, returned to be put
// back. On readOK the request is consumed from buf; on readEOF buf still
// holds the head, and the pooled buffer (if any) what came of the body.
func (fc *fastConn) readBody(req fastRequest) (body []byte, pooled *bytes.Buffer, res readResult) {
	total := req.headLen + req.bodyLen
	if total <= len(fc.buf) {
		for fc.w-fc.r < total {
			if fc.r+total > len(fc.buf) {
				fc.w = copy(fc.buf, fc.buf[fc.r:fc.w])
				fc.r = 0
			}
			fc.arm()
			if res := fc.fill(); res != readOK {
				return nil, nil, res
			}
		}
		body = fc.buf[fc.r+req.headLen : fc.r+total]
		fc.r += total
		return body, nil, readOK
	}
	// The body is larger than buf, so buf holds the head and part of it.
	pooled = bodyPool.Get().(*bytes.Buffer)
	pooled.Reset()
	pooled.Write(fc.buf[fc.r+req.headLen : fc.w])
	fc.w = fc.r + req.headLen
	fc.arm()
	_, err := io.CopyN(pooled, fc.pc, int64(req.bodyLen-pooled.Len()))
	switch {
	case err == nil:
		fc.r, fc.w = 0, 0
		return pooled.Bytes(), pooled, readOK
	case errors.Is(err, io.EOF):
		return nil, pooled, readEOF
	default:
		bodyPool.Put(pooled)
		return nil, nil, readFailed
	}
}

// handOff passes the connection to the net/http server, which first reads
// what the fast lane received and did not consume (buf[r:w], then extra).
// It reports false when that server is shut down.
func (fc *fastConn) handOff(extra []byte) bool {
	pending := append(bytes.Clone(fc.buf[fc.r:fc.w]), extra...)
	hc := &handoffConn{peerConn: fc.pc, pending: pending}
	fc.pc.SetDeadline(time.Time{}) // net/http sets its own
	select {
	case fc.s.handoff.ch <- hc:
		return true
	case <-fc.s.handoff.done:
		return false
	}
}

// fastRequest is a parsed request head.
type fastRequest struct {
	ep      endpoint // zero when the request goes to net/http
	handoff bool     // the head is not for the fast lane: hand it off
	headLen int      // bytes of request line and header fields, with the empty line
	bodyLen int      // Content-Length
	close   bool     // Connection: close
}

// parseHead parses a request head at the start of b. It returns complete
// when b holds a whole head the fast lane serves; req.handoff when the
// request is for net/http (as soon as that is known); neither when more
// bytes are needed.
func parseHead(b []byte) (req fastRequest, complete bool) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(b) >= maxFastLine {
			req.handoff = true
		}
		return req, false
	}
	line := b[:nl+1]
	for _, fl := range fastLines {
		if string(line) == fl.line {
			req.ep = fl.ep
			break
		}
	}
	if req.ep.call == nil {
		req.handoff = true
		return req, false
	}
	pos := nl + 1
	hosts, lengths := 0, 0
	for {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			return req, false
		}
		if nl == 0 || b[pos+nl-1] != '\r' {
			return handoff() // a bare LF
		}
		field := b[pos : pos+nl-1]
		pos += nl + 1
		if len(field) == 0 {
			break
		}
		colon := bytes.IndexByte(field, ':')
		if colon <= 0 || !isToken(field[:colon]) {
			return handoff() // obs-fold, whitespace before the colon, no name
		}
		name, value := field[:colon], bytes.Trim(field[colon+1:], " \t")
		if !isFieldValue(value) {
			return handoff()
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			if !isSimpleHost(value) {
				return handoff()
			}
		case equalFold(name, "content-length"):
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return handoff()
			}
			req.bodyLen = n
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				if equalFold(bytes.Trim(tok, " \t"), "close") {
					req.close = true
				}
			}
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"), equalFold(name, "upgrade"):
			return handoff()
		}
	}
	// RFC 9112 section 3.2: a request without Host, or with several, is
	// answered 400, which net/http does.
	if hosts != 1 || lengths > 1 || req.ep.method == http.MethodGet && req.bodyLen > 0 {
		return handoff()
	}
	req.headLen = pos
	return req, true
}

func handoff() (fastRequest, bool) { return fastRequest{handoff: true}, false }

// isToken reports whether b is an RFC 9110 token (a field name):
// https://www.rfc-editor.org/rfc/rfc9110#section-5.6.2
func isToken(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return len(b) > 0
}

// isFieldValue reports whether b, trimmed, is a valid field value: visible
// characters, obs-text, and spaces or tabs inside
// (https://www.rfc-editor.org/rfc/rfc9110#section-5.5).
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isSimpleHost reports whether b is a Host value of letters, digits and
// "-._:[]" only (names, IPv4 and IPv6 literals, ports; or empty); others,
// valid or not, go to net/http.
func isSimpleHost(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length (1*DIGIT) of at most MaxBodyBytes;
// a larger one goes to net/http, which answers too_large.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 6 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= MaxBodyBytes
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// appendResponse appends to b a complete response with v as its JSON body
// (encoded into body) and the headers net/http sends for writeJSON, in its
// order. It returns both buffers for reuse.
func appendResponse(body, b []byte, status int, v any, closing bool) ([]byte, []byte) {
	body, err := appendJSON(body, v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = appendJSON(body[:0], &Error{Code: CodeInternal, Message: "encoding response"})
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nCache-Control: no-store\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json"...)
	// RFC 9110 section 6.6.1: an origin server with a clock MUST send Date
	// (https://www.rfc-editor.org/rfc/rfc9110#section-6.6.1).
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return body, append(b, body...)
}

// handoffListener hands fast-lane connections to the net/http server.
type handoffListener struct {
	ch        chan net.Conn
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "unix" }
func (handoffAddr) String() string  { return "ncagent" }

// handoffConn is a connection passed to net/http, which reads first what
// the fast lane received and left unconsumed.
type handoffConn struct {
	*peerConn
	pending []byte
}

func (c *handoffConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.peerConn.Read(p)
}
