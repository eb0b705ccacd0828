package ipc

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// maxLoginDuration bounds a POST /v1/login stream.
const maxLoginDuration = 30 * time.Minute

// handleLogin streams LoginEvents as newline-delimited JSON, one flushed
// line per event, ending with a "done" or "error" event built from the
// backend's result. An error before the first event is a plain error
// response. The write deadline is extended per event; the client going
// away, or the server shutting down, cancels the backend's context.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req LoginRequest
	if !readRequest(w, r, time.Time{}, &req, false) { // a stream: no read deadline
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
		we := s.wireError(r.Context(), time.Time{}, "login", req.Account, err)
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
