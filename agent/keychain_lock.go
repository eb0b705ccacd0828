package agent

import (
	"context"
	"errors"
	"fmt"
)

// probeUser is the keychain user of the entry a probe write uses where the
// lock state cannot be asked (macOS, Windows). Account names cannot contain
// '#', so it never collides with an account's entry.
const probeUser = "#writable-probe"

// guard runs before every go-keyring call, inside do (so serialized and
// bounded): on the Secret Service it refuses at once, without calling
// go-keyring, when there is no session bus (go-keyring would autolaunch
// one) or the collection is locked (go-keyring would call Unlock, which
// prompts — and no background request may prompt).
func (k *Keychain) guard() error {
	if k.ss == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	return k.ss.check(ctx)
}

// Writable implements broker.WritableStore: nil when a Put would be
// accepted now. On the Secret Service it asks the collection's Locked
// property; elsewhere it writes and deletes a probe entry. It never
// prompts. Errors wrap ErrKeychainLocked, ErrNoKeychain or
// ErrKeychainTimeout when the cause is known.
func (k *Keychain) Writable(ctx context.Context) error {
	var err error
	if k.ss != nil {
		err = k.do(func() error { return k.ss.check(ctx) })
	} else {
		err = k.do(func() error {
			if err := k.kr.Set(k.service, probeUser, "probe"); err != nil {
				return err
			}
			return k.kr.Delete(k.service, probeUser)
		})
	}
	if err != nil {
		return k.wrap("writable check", "-", err, "")
	}
	return nil
}

// unlockFlight is one Secret Service unlock in progress; concurrent
// Unlock calls share it, so one lock shows at most one prompt.
type unlockFlight struct {
	done chan struct{}
	err  error
}

// Unlock asks the keychain to unlock: on the Secret Service its Unlock
// call, which shows the desktop's unlock prompt, waiting for the user until
// ctx ends. Concurrent calls share one prompt. Only interactive requests
// (ncagent unlock) call it; background requests never do. Where the lock
// state cannot be asked it reports whether a write is accepted now.
func (k *Keychain) Unlock(ctx context.Context) error {
	if k.Writable(ctx) == nil {
		return nil
	}
	if k.ss == nil {
		return fmt.Errorf("keychain: unlock: %w", ErrKeychainLocked)
	}
	k.unlockMu.Lock()
	f := k.unlocking
	if f == nil {
		f = &unlockFlight{done: make(chan struct{})}
		k.unlocking = f
		go func() {
			f.err = k.ss.unlock(ctx)
			k.unlockMu.Lock()
			k.unlocking = nil
			k.unlockMu.Unlock()
			close(f.done)
		}()
	}
	k.unlockMu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return fmt.Errorf("keychain: unlock: %w", ctx.Err())
	}
	if f.err != nil {
		return fmt.Errorf("keychain: unlock: %w", f.err)
	}
	if err := k.Writable(ctx); err != nil {
		return err
	}
	return nil
}

// storeLocked reports whether err says the keychain cannot be used now
// (locked, absent or not answering).
func storeLocked(err error) bool {
	return errors.Is(err, ErrKeychainLocked) || errors.Is(err, ErrNoKeychain) || errors.Is(err, ErrKeychainTimeout)
}

// StoreState reports, without writing and without prompting, whether the
// keychain can be used now: on the Secret Service, whether there is one
// and its collection is unlocked; elsewhere nil (unknown until used).
func (k *Keychain) StoreState(ctx context.Context) error {
	if k.ss == nil {
		return nil
	}
	return k.do(func() error { return k.ss.check(ctx) })
}
