package ipc

import (
	"context"
	"net/http"
)

// The secret store endpoints (wire protocol v1 additions):
//
//	POST /v1/unlock  UnlockRequest -> StoreResponse
//	POST /v1/lock    {}            -> StoreResponse
//
// /v1/unlock hands the agent the key of its file store (a passphrase; with
// an identity file the agent reads that itself), which the agent keeps in
// memory only; for the keychain it asks the Secret Service to unlock, which
// shows the desktop's prompt. /v1/lock makes the agent forget the file
// store's key. Backends without a store to unlock answer not_found.
//
// The passphrase is a secret: it is never logged, and only sent by
// ncagent unlock, which reads it from the terminal or a file, never argv.

// UnlockRequest is the body of POST /v1/unlock.
type UnlockRequest struct {
	// Passphrase of the file store; a secret. Empty for the keychain and
	// for a file store encrypted to an identity file.
	Passphrase string `json:"passphrase,omitempty"`
	// Create a new file store with Passphrase when there is none.
	Create bool `json:"create,omitempty"`
}

func (*UnlockRequest) validate() *Error { return nil }
func (*UnlockRequest) account() string  { return "" }

// LockRequest is the body of POST /v1/lock.
type LockRequest struct{}

func (*LockRequest) validate() *Error { return nil }
func (*LockRequest) account() string  { return "" }

// StoreResponse answers /v1/unlock and /v1/lock: the store after the call.
type StoreResponse struct {
	Store   string `json:"store"`          // "keychain" or "file"
	Path    string `json:"path,omitempty"` // the file store's file
	State   string `json:"state"`          // "unlocked" or "locked"
	Created bool   `json:"created,omitempty"`
	// NeedsPassphrase: the file store is locked and needs its passphrase;
	// with NeedsCreate there is no store yet and the passphrase creates it.
	NeedsPassphrase bool   `json:"needs_passphrase,omitempty"`
	NeedsCreate     bool   `json:"needs_create,omitempty"`
	Message         string `json:"message,omitempty"`
}

// Unlocker is implemented by Backends with a secret store that can be
// unlocked and locked.
type Unlocker interface {
	Unlock(ctx context.Context, peer Peer, req UnlockRequest) (StoreResponse, error)
	Lock(ctx context.Context, peer Peer) (StoreResponse, error)
}

// unlocker returns the backend as an Unlocker, or the not_found error.
func (s *Server) unlocker() (Unlocker, error) {
	if u, ok := s.b.(Unlocker); ok {
		return u, nil
	}
	return nil, &Error{Code: CodeNotFound, Message: "this agent has no secret store to unlock or lock"}
}

func (s *Server) unlock(ctx context.Context, peer Peer, req UnlockRequest) (any, func(), error) {
	u, err := s.unlocker()
	if err != nil {
		return nil, nil, err
	}
	resp, err := u.Unlock(ctx, peer, req)
	return &resp, func() {
		if resp.State == "unlocked" {
			s.log.Info("ipc: store unlocked", "store", resp.Store, "peer_pid", peer.PID, "peer_exe", peer.Exe)
		}
	}, err
}

func (s *Server) lock(ctx context.Context, peer Peer, _ LockRequest) (any, func(), error) {
	u, err := s.unlocker()
	if err != nil {
		return nil, nil, err
	}
	resp, err := u.Lock(ctx, peer)
	return &resp, func() {
		s.log.Info("ipc: store locked", "store", resp.Store, "peer_pid", peer.PID, "peer_exe", peer.Exe)
	}, err
}

// Unlock asks the agent to unlock its secret store (see UnlockRequest).
func (c *Client) Unlock(ctx context.Context, req UnlockRequest) (StoreResponse, error) {
	var out StoreResponse
	err := c.do(ctx, http.MethodPost, "/v1/unlock", req, &out)
	return out, err
}

// Lock asks the agent to forget its file store's key.
func (c *Client) Lock(ctx context.Context) (StoreResponse, error) {
	var out StoreResponse
	err := c.do(ctx, http.MethodPost, "/v1/lock", LockRequest{}, &out)
	return out, err
}
