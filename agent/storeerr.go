package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// ErrFileStoreLocked: the file store's key is not in the agent's memory
// (after a start, or ncagent lock).
var ErrFileStoreLocked = errors.New("the file store is locked: run ncagent unlock")

// storeCause names, in a few words, why the store cannot be used now, and
// what to do: the text status and the tray show ("keychain locked").
func storeCause(err error) string {
	switch {
	case errors.Is(err, ErrFileStoreLocked):
		return "file store locked: run ncagent unlock"
	case errors.Is(err, ErrNoKeychain):
		return "no keychain: start a Secret Service, or set store = \"file\" in [agent] and run ncagent unlock"
	case errors.Is(err, ErrKeychainLocked):
		return "keychain locked: run ncagent unlock"
	case errors.Is(err, ErrKeychainTimeout):
		return "keychain not answering: is an unlock prompt waiting?"
	}
	return "secret store unavailable: " + err.Error()
}

// storeLockedError is the wire error store_locked for account: the store
// cannot take (or give) the account's secret now, nothing was sent to the
// identity provider, and the message says how to unlock.
func storeLockedError(account string, err error) *ipc.Error {
	msg := fmt.Sprintf("account %s cannot refresh now, and nothing was sent so the sign-in is kept: %s", account, storeCause(err))
	return &ipc.Error{Code: ipc.CodeStoreLocked, Account: account, Message: msg}
}

// isStoreUnavailable reports whether err says the store cannot be used now.
func isStoreUnavailable(err error) bool {
	return errors.Is(err, broker.ErrStoreLocked) || storeLocked(err) || errors.Is(err, ErrFileStoreLocked)
}

// storeStater is a store that can tell, without writing and without
// prompting, whether it can be used now (the Keychain on the Secret
// Service, the file store).
type storeStater interface {
	StoreState(ctx context.Context) error
}

// storeState returns why the agent's store cannot be used now, or nil when
// it can or cannot tell.
func (a *Agent) storeState(ctx context.Context) error {
	s, ok := a.store.(storeStater)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.StoreState(ctx)
}

// storeName is StatusResponse.SecretStore: the store's kind, and the cause
// when it cannot be used now.
func (a *Agent) storeName(err error) string {
	name := "keychain"
	switch s := a.store.(type) {
	case *FileStore:
		name = "file"
	case *switchStore:
		if _, ok := s.file(); ok {
			name = "file"
		}
	}
	if err != nil {
		name += ": " + storeCause(err)
	}
	return name
}

// storeStateName is the account state status shows instead of signed-out
// when the account's secret cannot be read.
func storeStateName(err error) string {
	switch {
	case errors.Is(err, ErrFileStoreLocked):
		return "store-locked"
	case errors.Is(err, ErrNoKeychain):
		return "no-keychain"
	}
	return "keychain-locked"
}
