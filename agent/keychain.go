package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/ncagent/ncagent/broker"
)

// DefaultKeychainService is the keychain service name under which ncagent
// keeps its secrets.
const DefaultKeychainService = "ncagent"

// DefaultKeychainTimeout bounds every keychain call.
const DefaultKeychainTimeout = 5 * time.Second

// MaxSecretSize is the largest secret the Keychain stores, in bytes. Windows
// Credential Manager refuses blobs over 2560 bytes; 2048 leaves room and is
// far above the size of a refresh token or an app password.
const MaxSecretSize = 2048

// clientSecretSuffix is appended to the account name to form the keychain
// user of an account's OIDC client secret. Account names cannot contain '#'
// (see ValidateAccountName), so the entries never collide.
const clientSecretSuffix = "#client-secret"

// Keychain errors. Errors returned by Keychain wrap one of these (or
// broker.ErrNotFound) when the cause is known; test with errors.Is.
var (
	// ErrNoKeychain: there is no keychain service to talk to (on Linux: no
	// Secret Service on the D-Bus session bus, or no session bus at all).
	ErrNoKeychain = errors.New("no Secret Service on the session bus: install and unlock gnome-keyring or KeePassXC, or run inside your desktop session")
	// ErrKeychainLocked: the keychain is locked and was not unlocked.
	ErrKeychainLocked = errors.New("the keychain is locked: unlock it (e.g. log in to your desktop session) and retry")
	// ErrKeychainTimeout: the keychain did not answer within the timeout.
	// The error returned carries the actual timeout in its text.
	ErrKeychainTimeout = errors.New("the keychain did not answer in time: is an unlock prompt waiting?")
	// ErrSecretTooLarge: the secret is larger than MaxSecretSize or than
	// the platform keychain accepts.
	ErrSecretTooLarge = errors.New("secret too large for the keychain")
)

// Keychain is a broker.Store backed by the OS keychain (Secret Service on
// Linux and the BSDs, Keychain on macOS, Credential Manager on Windows)
// through github.com/zalando/go-keyring. It keeps one entry per account,
// user = account name, holding the refresh token or app password, and for
// confidential OIDC clients one more entry, user = account + "#client-secret".
//
// Every call is bounded by the timeout given to NewKeychain. Calls run one at
// a time: a Keychain never has more than one keychain operation in flight, so
// concurrent Puts of one account cannot leave duplicate items behind. When
// the keychain does not answer in time (typically an unlock prompt nobody
// answers), the call returns an error wrapping ErrKeychainTimeout but the
// operation itself cannot be cancelled: its goroutine lingers until the
// keychain answers, and later calls wait for it within their own timeout.
// A Keychain never falls back to storing anything in a file.
//
// Errors name the operation and the account, never the secret. A Keychain
// is safe for concurrent use.
type Keychain struct {
	service string
	timeout time.Duration
	kr      keyring.Keyring // the keyring provider; tests substitute fakes
	ss      *ssWatch        // lock state of the Secret Service, over kr's connection; nil elsewhere and for test fakes (keychain_lock.go)

	unlockMu  sync.Mutex    // guards unlocking
	unlocking *unlockFlight // the Secret Service unlock prompt in progress

	// sem holds a token while a keyring operation runs (including one
	// that outlived its caller's timeout); it serializes all operations.
	sem chan struct{}
}

var _ broker.Store = (*Keychain)(nil)

// NewKeychain returns a Keychain that keeps its entries under service
// (DefaultKeychainService when empty) and bounds every call by timeout
// (DefaultKeychainTimeout when zero or negative).
func NewKeychain(service string, timeout time.Duration) *Keychain {
	if service == "" {
		service = DefaultKeychainService
	}
	if timeout <= 0 {
		timeout = DefaultKeychainTimeout
	}
	kr := platformKeyring(timeout)
	return &Keychain{
		service: service,
		timeout: timeout,
		kr:      kr,
		ss:      newSSWatch(kr), // shares kr's Secret Service connection
		sem:     make(chan struct{}, 1),
	}
}

// Watch calls onBack whenever the Secret Service (re)appears on the session
// bus, so that a pending write is retried at once, until ctx ends. Where
// there is no Secret Service it returns at once.
func (k *Keychain) Watch(ctx context.Context, onBack func()) { watchKeyring(ctx, k.kr, onBack) }

// Get returns the account's refresh token or app password, or an error
// wrapping broker.ErrNotFound when there is none. The result must not be
// logged.
func (k *Keychain) Get(account string) (broker.Secret, error) {
	return k.get("get", account, account)
}

// Put stores the account's refresh token or app password, replacing any
// previous one. Secrets over MaxSecretSize bytes are refused with
// ErrSecretTooLarge.
func (k *Keychain) Put(account string, secret broker.Secret) error {
	return k.put("put", account, account, secret)
}

// Delete removes the account's refresh token or app password. Deleting a
// missing entry is not an error.
func (k *Keychain) Delete(account string) error {
	return k.delete("delete", account, account)
}

// GetClientSecret returns the OIDC client secret of a confidential client,
// or an error wrapping broker.ErrNotFound. The result must not be logged.
func (k *Keychain) GetClientSecret(account string) (broker.Secret, error) {
	return k.get("get client secret", account, account+clientSecretSuffix)
}

// PutClientSecret stores the OIDC client secret of account, replacing any
// previous one.
func (k *Keychain) PutClientSecret(account string, secret broker.Secret) error {
	return k.put("put client secret", account, account+clientSecretSuffix, secret)
}

// DeleteClientSecret removes the OIDC client secret of account. Deleting a
// missing entry is not an error.
func (k *Keychain) DeleteClientSecret(account string) error {
	return k.delete("delete client secret", account, account+clientSecretSuffix)
}

func (k *Keychain) get(op, account, user string) (broker.Secret, error) {
	if err := checkKeychainAccount(account); err != nil {
		return "", fmt.Errorf("keychain: %s %q: %w", op, account, err)
	}
	var v string
	err := k.do(func() error {
		if err := k.guard(); err != nil {
			return err
		}
		var err error
		v, err = k.kr.Get(k.service, user)
		return err
	})
	if err != nil {
		return "", k.wrap(op, account, err, "")
	}
	return broker.Secret(v), nil
}

func (k *Keychain) put(op, account, user string, secret broker.Secret) error {
	if err := checkKeychainAccount(account); err != nil {
		return fmt.Errorf("keychain: %s %q: %w", op, account, err)
	}
	if secret == "" {
		return fmt.Errorf("keychain: %s %q: refusing to store an empty secret", op, account)
	}
	if n := len(secret.Reveal()); n > MaxSecretSize {
		return fmt.Errorf("keychain: %s %q: %w: %d bytes, the limit is %d (Windows Credential Manager stores at most 2560)", op, account, ErrSecretTooLarge, n, MaxSecretSize)
	}
	err := k.do(func() error {
		if err := k.guard(); err != nil {
			return err
		}
		return k.kr.Set(k.service, user, secret.Reveal())
	})
	if err != nil {
		return k.wrap(op, account, err, secret.Reveal())
	}
	return nil
}

// maxDeletes bounds the loop in delete. A Secret Service may hold several
// items with the same attributes (written by another program or an older
// version); go-keyring deletes one per call.
const maxDeletes = 8

func (k *Keychain) delete(op, account, user string) error {
	if err := checkKeychainAccount(account); err != nil {
		return fmt.Errorf("keychain: %s %q: %w", op, account, err)
	}
	err := k.do(func() error {
		if err := k.guard(); err != nil {
			return err
		}
		for range maxDeletes {
			if err := k.kr.Delete(k.service, user); err != nil {
				if errors.Is(err, keyring.ErrNotFound) {
					return nil
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return k.wrap(op, account, err, "")
	}
	return nil
}

// do runs f with at most one operation in flight, bounded by k.timeout.
// On timeout f keeps running in its goroutine (a keyring call cannot be
// cancelled) and keeps the semaphore until it returns.
func (k *Keychain) do(f func() error) error {
	timer := time.NewTimer(k.timeout)
	defer timer.Stop()
	select {
	case k.sem <- struct{}{}:
	case <-timer.C:
		return &timeoutError{k.timeout}
	}
	done := make(chan error, 1) // buffered: a lingering f never blocks on send
	go func() {
		defer func() { <-k.sem }()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return &timeoutError{k.timeout}
	}
}

// wrap translates a keyring error into one naming the operation and the
// account and wrapping one of the package's sentinels when the cause is
// known. secret, when not empty, is scrubbed from the cause's text.
func (k *Keychain) wrap(op, account string, err error, secret string) error {
	var cause error
	switch {
	case errors.Is(err, ErrNoKeychain), errors.Is(err, ErrKeychainLocked):
		cause = err // already translated (keychain_lock.go)
	case errors.Is(err, keyring.ErrNotFound):
		cause = broker.ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		cause = ErrSecretTooLarge
	case errors.Is(err, ErrKeychainTimeout):
		cause = err
	case isNoKeychain(err):
		cause = &causeError{sentinel: ErrNoKeychain, detail: err}
	case isLocked(err):
		cause = &causeError{sentinel: ErrKeychainLocked, detail: err}
	default:
		cause = err
	}
	if secret != "" && strings.Contains(cause.Error(), secret) {
		cause = errors.New("keychain error (message withheld: it contained the secret)")
	}
	return fmt.Errorf("keychain: %s %q: %w", op, account, cause)
}

// checkKeychainAccount refuses account names that cannot be valid, before
// they reach the keychain.
func checkKeychainAccount(account string) error {
	if account == "" {
		return errors.New("empty account name")
	}
	if strings.Contains(account, "#") {
		return errors.New("account name contains '#'")
	}
	return nil
}

// isNoKeychain reports whether err says there is no keychain service to
// talk to: no session bus, or no Secret Service on it.
func isNoKeychain(err error) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown",
			"org.freedesktop.DBus.Error.NameHasNoOwner",
			"org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
			"org.freedesktop.DBus.Error.Spawn.ChildExited":
			return true
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true // the session bus socket is missing or refuses us
	}
	msg := err.Error()
	for _, s := range []string{
		"was not provided by any .service files",
		"couldn't determine address of session bus",
		"dbus-launch",
		"ServiceUnknown",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isLocked reports whether err says the keychain is locked and stayed so.
func isLocked(err error) bool {
	var de dbus.Error
	if errors.As(err, &de) && de.Name == "org.freedesktop.Secret.Error.IsLocked" {
		return true
	}
	msg := err.Error()
	for _, s := range []string{
		"failed to unlock", // go-keyring: the unlock prompt was dismissed
		"IsLocked",
		"is locked",
		"User interaction is not allowed", // macOS: locked keychain, no UI
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// causeError is a sentinel with the underlying error as detail. errors.Is
// matches both.
type causeError struct {
	sentinel error
	detail   error
}

func (e *causeError) Error() string   { return e.sentinel.Error() + " (" + e.detail.Error() + ")" }
func (e *causeError) Unwrap() []error { return []error{e.sentinel, e.detail} }

// timeoutError is returned when the keychain did not answer in time; it
// matches ErrKeychainTimeout and says how long the agent waited.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("the keychain did not answer within %s: is an unlock prompt waiting?", e.d)
}
func (e *timeoutError) Is(target error) bool { return target == ErrKeychainTimeout }

// globalKeyring is the keyring.Keyring of the go-keyring package functions,
// i.e. the platform keychain.
type globalKeyring struct{}

func (globalKeyring) Set(service, user, password string) error {
	return keyring.Set(service, user, password)
}
func (globalKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (globalKeyring) Delete(service, user string) error        { return keyring.Delete(service, user) }
func (globalKeyring) DeleteAll(service string) error           { return keyring.DeleteAll(service) }
