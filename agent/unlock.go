package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/ncagent/ncagent/ipc"
)

var _ ipc.Unlocker = (*Agent)(nil)

// Unlock implements ipc.Unlocker: it opens the file store with the
// passphrase (kept in memory only), or asks the Secret Service to unlock
// the keychain (its prompt). It is called only for ncagent unlock, a user's
// explicit request; no background request ever unlocks or prompts. In
// auto mode with no keychain to reach, a passphrase moves the agent to the
// file store: running ncagent unlock there is the user's choice of it.
func (a *Agent) Unlock(ctx context.Context, peer ipc.Peer, req ipc.UnlockRequest) (ipc.StoreResponse, error) {
	resp, err := a.unlock(ctx, req)
	if err != nil {
		a.log.Info("unlock refused", "peer_pid", peer.PID, "err", err.Error())
		return resp, unlockWireError(err)
	}
	if resp.State == "unlocked" {
		a.log.Info("secret store unlocked", "store", resp.Store, "path", resp.Path, "created", resp.Created, "peer_pid", peer.PID)
		a.broker.StoreChanged()
		a.notify()
	}
	return resp, nil
}

func (a *Agent) unlock(ctx context.Context, req ipc.UnlockRequest) (ipc.StoreResponse, error) {
	switch s := a.store.(type) {
	case *FileStore:
		return unlockFile(s, req)
	case *Keychain:
		return unlockKeychain(ctx, s)
	case *switchStore:
		if f, ok := s.file(); ok {
			return unlockFile(f, req)
		}
		err := s.kc.StoreState(ctx)
		if !errors.Is(err, ErrNoKeychain) || s.mode != StoreAuto {
			return unlockKeychain(ctx, s.kc)
		}
		// No keychain here: the file store is the way, once the user
		// gives it a passphrase.
		resp, err := unlockFile(s.fs, req)
		if err == nil && resp.State == "unlocked" {
			s.toFile()
		}
		if resp.State != "unlocked" {
			resp.Message = "no keychain can be reached here (" + storeCause(ErrNoKeychain) + "): " + resp.Message
		}
		return resp, err
	}
	return ipc.StoreResponse{}, &ipc.Error{Code: ipc.CodeNotFound, Message: "this agent's store cannot be unlocked"}
}

// unlockFile opens f with req's passphrase. Without a passphrase (and no
// identity file) it answers locked, saying whether the store exists, so
// that the client asks for one (twice for a new store).
func unlockFile(f *FileStore, req ipc.UnlockRequest) (ipc.StoreResponse, error) {
	resp := ipc.StoreResponse{Store: "file", Path: f.Path(), State: "locked"}
	if !f.Locked() {
		resp.State = "unlocked"
		return resp, nil
	}
	exists := f.Exists()
	if (req.Passphrase == "" && f.identityFile == "") || (!exists && !req.Create) {
		resp.NeedsPassphrase = f.identityFile == ""
		resp.NeedsCreate = !exists
		resp.Message = "the file store needs its passphrase"
		if !exists {
			resp.Message = "there is no file store yet: choose a passphrase to create one"
			if f.identityFile != "" {
				resp.Message = "there is no file store yet: unlock with create makes one for the identity file"
			}
		}
		return resp, nil
	}
	pass := []byte(req.Passphrase)
	defer clear(pass)
	if err := f.Unlock(pass, req.Create); err != nil {
		return resp, err
	}
	resp.State, resp.Created = "unlocked", !exists
	return resp, nil
}

// unlockKeychain asks the keychain to unlock (the Secret Service prompt).
func unlockKeychain(ctx context.Context, k *Keychain) (ipc.StoreResponse, error) {
	resp := ipc.StoreResponse{Store: "keychain", State: "locked"}
	if err := k.Unlock(ctx); err != nil {
		return resp, err
	}
	resp.State = "unlocked"
	return resp, nil
}

// Lock implements ipc.Unlocker: the agent forgets the file store's key.
// Cached tokens keep being served; refreshes answer store_locked until
// the next unlock. The keychain is locked by the desktop, not by ncagent.
func (a *Agent) Lock(ctx context.Context, peer ipc.Peer) (ipc.StoreResponse, error) {
	var f *FileStore
	switch s := a.store.(type) {
	case *FileStore:
		f = s
	case *switchStore:
		if fs, ok := s.file(); ok {
			f = fs
		}
	}
	if f == nil {
		return ipc.StoreResponse{Store: "keychain", State: "unlocked",
			Message: "the keychain is locked and unlocked by your desktop session (or its keyring app); ncagent lock only locks the file store"}, nil
	}
	f.Lock()
	a.log.Info("file store locked: its key is forgotten", "path", f.Path(), "peer_pid", peer.PID)
	a.notify()
	return ipc.StoreResponse{Store: "file", Path: f.Path(), State: "locked"}, nil
}

// unlockWireError is the wire error of a failed unlock.
func unlockWireError(err error) error {
	var we *ipc.Error
	switch {
	case errors.As(err, &we):
		return we
	case errors.Is(err, ErrWrongPassphrase):
		return &ipc.Error{Code: ipc.CodeStoreLocked, Message: "wrong passphrase: the file store stays locked"}
	case errors.Is(err, ErrFileStoreDamaged), errors.Is(err, ErrFileStoreUnsafe):
		return &ipc.Error{Code: ipc.CodeStoreLocked, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &ipc.Error{Code: ipc.CodeStoreLocked, Message: "the unlock prompt was not answered in time: the keychain stays locked"}
	case isStoreUnavailable(err):
		return &ipc.Error{Code: ipc.CodeStoreLocked, Message: fmt.Sprintf("%s (%v)", storeCause(err), err)}
	}
	return &ipc.Error{Code: ipc.CodeInternal, Message: err.Error()}
}
