package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
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
	peerCred func(net.Conn) (Peer, error)
	allow    func(Peer) error
	connWait time.Duration // how long a connection over MaxConns waits

	// shutdownCtx is cancelled when shutdown starts (Run's ctx done, or
	// Close); it ends login streams, which could otherwise hold shutdown
	// for their whole duration.
	shutdownCtx    context.Context
	shutdownCancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
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
	}
	s.shutdownCtx, s.shutdownCancel = context.WithCancel(context.Background())
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: opts.ReadTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if pc, ok := c.(*peerConn); ok {
				return context.WithValue(ctx, peerKey{}, pc.peer)
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
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	pl := &peerListener{Listener: ln, s: s, sem: make(chan struct{}, s.opts.MaxConns), done: make(chan struct{})}
	defer pl.Close()
	s.log.Debug("ipc: serving", "socket", s.opts.Socket, "max_conns", s.opts.MaxConns)
	errc := make(chan error, 1)
	go func() { errc <- s.hs.Serve(pl) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("ipc: serve %s: %w", s.opts.Socket, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.hs.Shutdown(sctx); err != nil {
		s.log.Warn("ipc: shutdown: requests still running after grace period, closing", "err", err)
		s.hs.Close()
	}
	<-errc
	return nil
}

// Close stops the server at once: the listener and every connection are
// closed. It is safe to call more than once and concurrently with Run.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.shutdownCancel()
		s.closeErr = s.hs.Close()
	})
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

// serveHTTP routes a request. The paths and methods are the v1 contract.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = []string{"no-store"}
	peer, ok := r.Context().Value(peerKey{}).(Peer)
	if !ok {
		// Defence in depth: the listener wrapper should make this impossible.
		s.log.Error("ipc: request without peer credentials", "path", r.URL.Path)
		writeError(w, &Error{Code: CodeForbidden, Message: "peer credentials unknown"})
		return
	}
	var want string
	var h func(http.ResponseWriter, *http.Request, Peer)
	switch r.URL.Path {
	case "/v1/status":
		want, h = http.MethodGet, s.handleStatus
	case "/v1/token":
		want, h = http.MethodPost, s.handleToken
	case "/v1/exchange":
		want, h = http.MethodPost, s.handleExchange
	case "/v1/login":
		want, h = http.MethodPost, s.handleLogin
	case "/v1/revoke":
		want, h = http.MethodPost, s.handleRevoke
	default:
		writeError(w, &Error{Code: CodeNotFound, Message: "no such endpoint: " + strconv.Quote(r.URL.Path)})
		return
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		writeError(w, &Error{Code: CodeMethod, Message: r.URL.Path + " wants " + want})
		return
	}
	h(w, r, peer)
}

// requestContext bounds a handler by WriteTimeout minus a margin, so a slow
// backend yields 504 timeout while the response can still be written.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	margin := min(s.opts.WriteTimeout/10, time.Second)
	return context.WithTimeout(r.Context(), s.opts.WriteTimeout-margin)
}

// readBody reads and decodes the request body into v (one of the request
// types) and validates it. Once the body is read the read deadline is
// lifted: from then on the connection is only watched for the client
// going away, which cancels the request context.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v interface{ validate() *Error }, emptyOK bool) *Error {
	if r.ContentLength > MaxBodyBytes {
		return tooLarge()
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer bodyPool.Put(buf)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		return invalid("reading body: " + err.Error())
	}
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	// decodeBody copies what it keeps, so buf may be reused afterwards.
	if e := decodeBody(buf.Bytes(), v, emptyOK); e != nil {
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
// errors that are not the client's.
func (s *Server) wireError(r *http.Request, op, account string, err error) *Error {
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
	if r.Context().Err() != nil {
		s.log.Debug("ipc: client went away", "op", op, "account", account)
		return &Error{Code: CodeTimeout, Message: op + ": request cancelled", Account: account}
	}
	// By contract backend errors carry no secrets; log the detail here and
	// send a generic message.
	s.log.Error("ipc: backend error", "op", op, "account", account, "err", err)
	return &Error{Code: CodeInternal, Message: op + ": internal error, see the agent log", Account: account}
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, _ Peer) {
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp, err := s.b.Status(ctx)
	if err != nil {
		writeError(w, s.wireError(r, "status", "", err))
		return
	}
	if resp.Socket == "" {
		resp.Socket = s.opts.Socket
	}
	if resp.Accounts == nil {
		resp.Accounts = []AccountStatus{}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req TokenRequest
	if e := s.readBody(w, r, &req, true); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp, err := s.b.Token(ctx, peer, req)
	if err != nil {
		writeError(w, s.wireError(r, "token", req.Account, err))
		return
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.Info("ipc: token issued", "account", resp.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
			"client_hint", clip(req.ClientHint), "audience", req.Audience, "scopes", resp.Scope,
			"token_type", resp.TokenType, "expires_at", resp.ExpiresAt)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleExchange(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req ExchangeRequest
	if e := s.readBody(w, r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp, err := s.b.Exchange(ctx, peer, req)
	if err != nil {
		writeError(w, s.wireError(r, "exchange", req.Account, err))
		return
	}
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.Info("ipc: token exchanged", "account", resp.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
			"client_hint", clip(req.ClientHint), "audience", req.Audience, "scopes", resp.Scope,
			"issued_token_type", resp.IssuedTokenType, "delegation", req.ActorToken != "", "expires_at", resp.ExpiresAt)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req RevokeRequest
	if e := s.readBody(w, r, &req, false); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	resp, err := s.b.Revoke(ctx, peer, req)
	if err != nil {
		writeError(w, s.wireError(r, "revoke", req.Account, err))
		return
	}
	s.log.Info("ipc: revoked", "account", req.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
		"where", resp.Where, "server_revoked", resp.ServerRevoked, "secret_deleted", resp.SecretDeleted)
	writeJSON(w, http.StatusOK, resp)
}

// handleLogin streams LoginEvents as newline-delimited JSON, one flushed
// line per event, ending with a "done" or "error" event built from the
// backend's result. An error before the first event is a plain error
// response. The write deadline is extended per event; the client going
// away, or the server shutting down, cancels the backend's context.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req LoginRequest
	if e := s.readBody(w, r, &req, false); e != nil {
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
		we := s.wireError(r, "login", req.Account, err)
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
	b, err := json.Marshal(v)
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
