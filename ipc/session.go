package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Exec sessions (ncagent exec): POST /v1/session opens a session of the
// agent's loopback proxy and holds it open for exactly as long as the
// request's connection: the first line of the answer (newline-delimited
// JSON) is the SessionResponse, then the answer stays open without data;
// when the client closes the connection (ncagent exec ends, or is killed
// and the kernel closes its socket), the agent forgets the session at once.
// GET /v1/status lists the open sessions (StatusResponse.ExecSessions).
// The endpoint is served when the Backend implements SessionBackend, and
// is 404 otherwise. A held session counts against ServerOptions.MaxConns
// like any open connection.

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	Account  string `json:"account,omitempty"`
	Scopes   Scopes `json:"scopes,omitempty"`
	Audience string `json:"audience,omitempty"`
	// Command is the program the session is for, for status and logs.
	Command string `json:"command,omitempty"`
}

func (r *SessionRequest) validate() *Error { return validScopes(r.Scopes) }
func (r *SessionRequest) account() string  { return r.Account }

// SessionResponse is the first line of a POST /v1/session answer: what the
// child gets in its environment. Password is a secret (the session's
// credential, worthless once the session ends): never log it.
type SessionResponse struct {
	ID       string `json:"id"`
	Account  string `json:"account"`
	Host     string `json:"host"`     // the proxy's base URL, with the server's path prefix
	Username string `json:"username"` // the real login name
	Password string `json:"password"` // the session credential
}

// SessionStatus is one open session in GET /v1/status.
type SessionStatus struct {
	ID        string    `json:"id"`
	Account   string    `json:"account"`
	PID       int       `json:"pid"`
	Command   string    `json:"command,omitempty"`
	Opened    time.Time `json:"opened"`
	Requests  int64     `json:"requests"`
	LastError string    `json:"last_error,omitempty"`
}

// SessionBackend is implemented by a Backend that serves exec sessions.
type SessionBackend interface {
	// OpenSession opens a session for the peer (whose PID is the session's
	// holder) and returns it with the function that closes it.
	OpenSession(ctx context.Context, peer Peer, req SessionRequest) (SessionResponse, func(), error)
}

// handleSession opens a session, writes it, and keeps the answer open
// until the client goes away or the server shuts down; then it closes the
// session.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request, peer Peer) {
	sb, ok := s.b.(SessionBackend)
	if !ok {
		writeError(w, &Error{Code: CodeNotFound, Message: "this agent serves no exec sessions"})
		return
	}
	var req SessionRequest
	if !readRequest(w, r, time.Time{}, &req, true) { // held open: no read deadline
		return
	}
	ctx, cancel := s.requestContext(r.Context())
	resp, closeSession, err := sb.OpenSession(ctx, peer, req)
	cancel()
	if err != nil {
		writeError(w, s.wireError(r.Context(), time.Time{}, "session", req.Account, err))
		return
	}
	defer closeSession()
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // the answer lasts as long as the session
	b, _ := json.Marshal(&resp)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(append(b, '\n')); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	s.log.Info("ipc: exec session opened", "session", resp.ID, "account", resp.Account, "peer_pid", peer.PID, "peer_exe", peer.Exe, "command", clip(req.Command))
	select {
	case <-r.Context().Done():
	case <-s.shutdownCtx.Done():
	}
	s.log.Info("ipc: exec session ended", "session", resp.ID, "account", resp.Account, "peer_pid", peer.PID)
}

// ExecSession is an open exec session on the client side. Close ends it.
type ExecSession struct {
	SessionResponse
	body   io.ReadCloser
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenSession opens an exec session: it lasts until Close is called or
// this process exits. ctx bounds the opening only. Done is closed when the
// agent ends the session first (it stopped).
func (c *Client) OpenSession(ctx context.Context, req SessionRequest) (*ExecSession, error) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	resp, err := c.send(lctx, http.MethodPost, "/v1/session", req, false)
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	es := &ExecSession{body: resp.Body, cancel: cancel, done: make(chan struct{})}
	err = json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&es.SessionResponse)
	if !stop() || err != nil {
		resp.Body.Close()
		cancel()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("ipc: POST /v1/session: %w", err)
	}
	go func() {
		io.Copy(io.Discard, resp.Body) // returns when the agent ends the session or Close
		close(es.done)
	}()
	return es, nil
}

// Done is closed when the session's connection ended.
func (es *ExecSession) Done() <-chan struct{} { return es.done }

// Close ends the session: the agent forgets its credential at once.
func (es *ExecSession) Close() error {
	es.cancel()
	err := es.body.Close()
	<-es.done
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
