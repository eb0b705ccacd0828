package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

const (
	// maxHintLog bounds how much of client_hint reaches the log.
	maxHintLog = 128
	// Lingering on an oversized body: the rest is read and dropped, up to
	// lingerBytes or for lingerTime, before the 413 is sent and the
	// connection closed, so that a client that writes its whole body
	// before reading (Python's http.client and many others) reads the 413
	// instead of failing its write on a closed socket. nginx does the same
	// (lingering_close). A body larger still gets the 413 after the bound.
	lingerBytes = 4 << 20
	lingerTime  = 2 * time.Second
)

// route is one v1 endpoint: the method it takes and its handler, which
// runs with the peer the connection was checked for.
type route struct {
	method string
	serve  func(s *Server, w http.ResponseWriter, r *http.Request, peer Peer)
}

// routes are the v1 endpoints by path. A new endpoint is one entry here
// (jsonRoute for one JSON document in, one out).
var routes = map[string]route{
	"/v1/status":   {http.MethodGet, jsonRoute("status", (*Server).status)},
	"/v1/token":    {http.MethodPost, jsonRoute("token", (*Server).token)},
	"/v1/exchange": {http.MethodPost, jsonRoute("exchange", (*Server).exchange)},
	"/v1/revoke":   {http.MethodPost, jsonRoute("revoke", (*Server).revoke)},
	"/v1/login":    {http.MethodPost, (*Server).handleLogin},
	"/v1/session":  {http.MethodPost, (*Server).handleSession},               // session.go
	"/v1/unlock":   {http.MethodPost, jsonRoute("unlock", (*Server).unlock)}, // unlock.go
	"/v1/lock":     {http.MethodPost, jsonRoute("lock", (*Server).lock)},
}

// serveHTTP routes a request. The paths, methods and error bodies are the
// v1 contract. A panicking handler is logged and answered 500 when nothing
// was written yet (the connection is cut otherwise); the server goes on.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.served()
	tw := &trackingWriter{ResponseWriter: w}
	defer s.recoverPanic(tw, r)
	w = tw
	w.Header()["Cache-Control"] = noStore
	peer, ok := r.Context().Value(peerKey{}).(Peer)
	if !ok {
		// Defence in depth: the listener wrapper should make this impossible.
		s.log.Error("ipc: request without peer credentials", "path", r.URL.Path)
		writeError(w, &Error{Code: CodeForbidden, Message: "peer credentials unknown"})
		return
	}
	rt, found := routes[r.URL.Path]
	if !found {
		writeError(w, &Error{Code: CodeNotFound, Message: "no such endpoint: " + strconv.Quote(r.URL.Path)})
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeError(w, &Error{Code: CodeMethod, Message: r.URL.Path + " wants " + rt.method})
		return
	}
	rt.serve(s, w, r, peer)
}

func (s *Server) recoverPanic(w *trackingWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.Error("ipc: handler panicked", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
	if w.wrote {
		panic(http.ErrAbortHandler) // net/http cuts the connection quietly
	}
	w.Header()["Connection"] = []string{"close"}
	writeError(w, &Error{Code: CodeInternal, Message: "internal error, see the agent log"})
}

// trackingWriter records whether the response has started.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the connection's writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// request is a request body type: decoded, then validated.
type request interface {
	validate() *Error
	account() string // for errors and logs
}

// jsonRoute serves an endpoint answering one JSON document. The body (at
// most MaxBodyBytes) is decoded into a Req when Req is a request (an
// empty body is accepted when every field is optional: a TokenRequest);
// call asks the backend with the request's context, bounded by the
// handler's deadline (handlerDeadline); a backend error becomes the wire
// error (wireError). The record call returns (the log of what was handed
// out, or nil) runs before the answer leaves, with net/http's write at the
// handler's return: flushing the answer first measured slower
// (TestCLIBench), as the client's next request then races net/http's
// background read of the connection while the record is made.
func jsonRoute[Req any](op string, call func(s *Server, ctx context.Context, peer Peer, req Req) (resp any, record func(), err error)) func(*Server, http.ResponseWriter, *http.Request, Peer) {
	return func(s *Server, w http.ResponseWriter, r *http.Request, peer Peer) {
		deadline := s.handlerDeadline()
		var req Req
		rq, isReq := any(&req).(request)
		_, emptyOK := rq.(*TokenRequest)
		if !readRequest(w, r, deadline, rq, emptyOK) {
			return
		}
		resp, record, err := call(s, r.Context(), peer, req)
		if err != nil {
			account := ""
			if isReq {
				account = rq.account()
			}
			writeError(w, s.wireError(r.Context(), deadline, op, account, err))
			return
		}
		s.writeAnswer(w, resp)
		if record != nil {
			record()
		}
	}
}

// readRequest reads the body (readBody, with until) and decodes it into
// req (decodeRequest; nil: the endpoint takes no body), answering an error
// itself; it reports whether the handler goes on.
func readRequest(w http.ResponseWriter, r *http.Request, until time.Time, req request, emptyOK bool) bool {
	body, e := readBody(w, r, until)
	if e == nil && req != nil {
		e = decodeRequest(body, req, emptyOK)
	}
	if e != nil {
		writeError(w, e)
		return false
	}
	return true
}

// readBody reads the request body, at most MaxBodyBytes, then moves the
// connection's read deadline to until (zero: none). From then on net/http
// reads the connection in the background only to see whether the client
// went away, and ends the request's context when that read fails: at EOF,
// or at until when it is set. So until bounds the handler through the
// request's own context, at the cost of one deadline update the read
// deadline needed anyway, where context.WithTimeout would add a timer and
// a child context to every request (4 % of the agent's CPU per token,
// BENCHMARKS.md). For a larger body it lingers (see lingerBytes) and
// returns too_large, to be answered with Connection: close.
func readBody(w http.ResponseWriter, r *http.Request, until time.Time) ([]byte, *Error) {
	if r.ContentLength > MaxBodyBytes {
		linger(w, r, r.ContentLength)
		return nil, tooLarge()
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		// The length is known: one buffer of that size, and net/http's
		// body reader stops there.
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			linger(w, r, -1)
			return nil, tooLarge()
		}
	}
	if err != nil {
		return nil, invalid("reading body: " + err.Error())
	}
	http.NewResponseController(w).SetReadDeadline(until)
	return body, nil
}

// linger reads and drops the rest of an oversized body (left bytes, or
// -1 and less when unknown) within lingerBytes and lingerTime, and marks
// the answer as the connection's last. A body
// known to be larger than the bound is not read at all: the client could
// not finish writing it anyway.
func linger(w http.ResponseWriter, r *http.Request, left int64) {
	w.Header()["Connection"] = []string{"close"}
	if left > lingerBytes {
		return
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, r.Body, lingerBytes)
}

func tooLarge() *Error {
	return &Error{Code: CodeTooLarge, Message: "body larger than " + strconv.Itoa(MaxBodyBytes) + " bytes"}
}

// handlerDeadline is when a backend call must have returned: WriteTimeout
// minus a margin from now, so a slow backend yields 504 timeout while the
// response can still be written.
func (s *Server) handlerDeadline() time.Time {
	margin := min(s.opts.WriteTimeout/10, time.Second)
	return time.Now().Add(s.opts.WriteTimeout - margin)
}

// requestContext is base bounded by handlerDeadline, for the endpoints
// whose backend call does not run under the read deadline (sessions).
func (s *Server) requestContext(base context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(base, s.handlerDeadline())
}

// wireError turns a backend error into the wire error to send, logging
// errors that are not the client's. base is the request's context and
// deadline the handler's (the zero time when base has its own).
func (s *Server) wireError(base context.Context, deadline time.Time, op, account string, err error) *Error {
	if we, ok := errors.AsType[*Error](err); ok {
		out := *we
		out.Status = we.HTTPStatus()
		return &out
	}
	if errors.Is(err, context.DeadlineExceeded) || base.Err() != nil && !deadline.IsZero() && !time.Now().Before(deadline) {
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

// status has no request body.
type statusRequest struct{}

func (s *Server) status(ctx context.Context, _ Peer, _ statusRequest) (any, func(), error) {
	resp, err := s.b.Status(ctx)
	if resp.Socket == "" {
		resp.Socket = s.opts.Socket
	}
	if resp.Accounts == nil {
		resp.Accounts = []AccountStatus{}
	}
	return &resp, nil, err
}

func (s *Server) token(ctx context.Context, peer Peer, req TokenRequest) (any, func(), error) {
	resp, err := s.b.Token(ctx, peer, req)
	return &resp, func() {
		s.logInfo(ctx, "ipc: token issued", slog.String("account", resp.Account),
			slog.Int("peer_pid", peer.PID), slog.String("peer_exe", peer.Exe), slog.String("client_hint", clip(req.ClientHint)),
			slog.String("audience", req.Audience), slog.String("scopes", resp.Scope),
			slog.String("token_type", resp.TokenType), slog.Time("expires_at", resp.ExpiresAt))
	}, err
}

func (s *Server) exchange(ctx context.Context, peer Peer, req ExchangeRequest) (any, func(), error) {
	resp, err := s.b.Exchange(ctx, peer, req)
	return &resp, func() {
		s.logInfo(ctx, "ipc: token exchanged", slog.String("account", resp.Account),
			slog.Int("peer_pid", peer.PID), slog.String("peer_exe", peer.Exe), slog.String("client_hint", clip(req.ClientHint)),
			slog.String("audience", req.Audience), slog.String("scopes", resp.Scope),
			slog.String("issued_token_type", resp.IssuedTokenType), slog.Bool("delegation", req.ActorToken != ""),
			slog.Time("expires_at", resp.ExpiresAt))
	}, err
}

func (s *Server) revoke(ctx context.Context, peer Peer, req RevokeRequest) (any, func(), error) {
	resp, err := s.b.Revoke(ctx, peer, req)
	if err == nil {
		s.answers.reset() // no encoded answer outlives a revoked token
	}
	return &resp, func() {
		s.log.Info("ipc: revoked", "account", req.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe,
			"where", resp.Where, "server_revoked", resp.ServerRevoked, "secret_deleted", resp.SecretDeleted)
	}, err
}

// logInfo logs an info record straight to the logger's handler, with no
// source position: slog.Logger would walk the stack (runtime.Callers) for
// one on every token handed out, and the agent's handler prints none. A
// handler with AddSource shows these records without a source.
func (s *Server) logInfo(ctx context.Context, msg string, attrs ...slog.Attr) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)
	r.AddAttrs(attrs...)
	h.Handle(ctx, r) // as slog.Logger does, a handler's error is dropped
}

func clip(s string) string {
	if len(s) > maxHintLog {
		return s[:maxHintLog] + "…"
	}
	return s
}

// writeAnswer writes a backend's answer, 200; a token's encoding may be
// one encoded before (tokenAnswers).
func (s *Server) writeAnswer(w http.ResponseWriter, v any) {
	var b []byte
	var err error
	if t, ok := v.(*TokenResponse); ok {
		b, err = s.answers.encode(t)
	} else {
		b, err = json.Marshal(v)
	}
	writeBody(w, http.StatusOK, b, err)
}

// writeJSON writes v with the headers every response carries.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	writeBody(w, status, b, err)
}

// Header values every JSON answer carries. net/http only reads a
// header's values, so one slice serves every response.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// writeBody writes b, the encoding of an answer, or a 500 when encoding
// it failed (err).
func writeBody(w http.ResponseWriter, status int, b []byte, err error) {
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Error{Code: CodeInternal, Message: "encoding response"})
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType // Cache-Control: serveHTTP set it
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.HTTPStatus(), e)
}
