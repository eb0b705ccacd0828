//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// The Secret Service API (https://specifications.freedesktop.org/secret-service-spec/latest/),
// as far as the lock state goes. go-keyring (which reads and writes the
// items) calls Unlock before every operation, which shows a prompt when the
// collection is locked; ncagent asks the collection's Locked property first
// instead, so that no background request ever prompts, and calls Unlock
// only for `ncagent unlock`. The service, collection and path names are
// secretservice_unix.go's.
const (
	slPrompt       = "org.freedesktop.Secret.Prompt"
	slDefaultAlias = "default"
	slNoObject     = dbus.ObjectPath("/")
)

// ssWatch watches the lock state of the collection go-keyring uses
// (the "login" collection when there is one, else the default alias) over
// the Keychain's kept Secret Service connection (ssConn in
// secretservice_unix.go): one session-bus connection per Keychain serves
// the writes, this watcher and the unlock prompt. It never autolaunches a
// bus: with no session bus address (DBUS_SESSION_BUS_ADDRESS unset and no
// $XDG_RUNTIME_DIR/bus) it answers ErrNoKeychain, and the Keychain then
// never calls go-keyring, whose dbus.SessionBus() would run dbus-launch and
// leave a dbus-daemon and a keyring daemon behind.
type ssWatch struct {
	bus *ssConn
}

// newSSWatch returns the watcher for kr, the Keychain's keyring provider,
// sharing its connection.
func newSSWatch(kr keyring.Keyring) *ssWatch {
	if k, ok := kr.(ssKeyring); ok {
		return &ssWatch{bus: k.ss}
	}
	return &ssWatch{bus: newSSConn(DefaultKeychainTimeout)}
}

// conn returns the shared connection, made when there is none or it
// dropped. godbus connections are safe for concurrent use.
func (s *ssWatch) conn(ctx context.Context) (*dbus.Conn, error) {
	c, err := s.bus.busConn(ctx)
	if err != nil {
		return nil, &causeError{sentinel: ErrNoKeychain, detail: fmt.Errorf("no D-Bus session bus: %w", err)}
	}
	return c, nil
}

// collection returns the kept connection and the path of the collection
// go-keyring writes to.
func (s *ssWatch) collection(ctx context.Context) (*dbus.Conn, dbus.ObjectPath, error) {
	c, err := s.conn(ctx)
	if err != nil {
		return nil, "", err
	}
	p, err := collectionPath(ctx, c)
	return c, p, err
}

func collectionPath(ctx context.Context, c *dbus.Conn) (dbus.ObjectPath, error) {
	svc := c.Object(ssName, ssPath)
	v, err := getProperty(ctx, svc, ssService+".Collections")
	if err != nil {
		return "", translateSSError(err)
	}
	if paths, ok := v.Value().([]dbus.ObjectPath); ok {
		for _, p := range paths {
			if p == ssLogin {
				return p, nil
			}
		}
	}
	var p dbus.ObjectPath
	if err := svc.CallWithContext(ctx, ssService+".ReadAlias", 0, slDefaultAlias).Store(&p); err != nil {
		return "", translateSSError(err)
	}
	if p == slNoObject {
		return "", &causeError{sentinel: ErrNoKeychain, detail: errors.New("the Secret Service has no default collection")}
	}
	return p, nil
}

// check returns nil when the collection is unlocked, an error wrapping
// ErrKeychainLocked when it is locked, and one wrapping ErrNoKeychain when
// there is no Secret Service to ask. It never prompts.
func (s *ssWatch) check(ctx context.Context) error {
	c, p, err := s.collection(ctx)
	if err != nil {
		return err
	}
	v, err := getProperty(ctx, c.Object(ssName, p), ssCollection+".Locked")
	if err != nil {
		return translateSSError(err)
	}
	if locked, ok := v.Value().(bool); !ok || locked {
		return &causeError{sentinel: ErrKeychainLocked, detail: fmt.Errorf("collection %s is locked", p)}
	}
	return nil
}

// unlock asks the Secret Service to unlock the collection, which shows the
// desktop's unlock prompt, and waits for the answer or ctx. Only `ncagent
// unlock` (a user at a terminal or the tray) calls it.
// check keeps answering while the prompt waits.
func (s *ssWatch) unlock(ctx context.Context) error {
	c, p, err := s.collection(ctx)
	if err != nil {
		return err
	}
	var unlocked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := c.Object(ssName, ssPath).CallWithContext(ctx, ssService+".Unlock", 0, []dbus.ObjectPath{p}).Store(&unlocked, &prompt); err != nil {
		return translateSSError(err)
	}
	if prompt == slNoObject {
		return nil // it was unlocked, or unlocked without asking
	}
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(prompt), dbus.WithMatchInterface(slPrompt), dbus.WithMatchMember("Completed")}
	if err := c.AddMatchSignalContext(ctx, match...); err != nil {
		return translateSSError(err)
	}
	defer c.RemoveMatchSignal(match...)
	ch := make(chan *dbus.Signal, 4)
	c.Signal(ch)
	defer c.RemoveSignal(ch)
	// "window-id: Platform specific window handle to use for showing the
	// prompt"; empty: none.
	if err := c.Object(ssName, prompt).CallWithContext(ctx, slPrompt+".Prompt", 0, "").Err; err != nil {
		return translateSSError(err)
	}
	for {
		select {
		case sig := <-ch:
			if sig.Path != prompt || sig.Name != slPrompt+".Completed" || len(sig.Body) == 0 {
				continue
			}
			if dismissed, _ := sig.Body[0].(bool); dismissed {
				return &causeError{sentinel: ErrKeychainLocked, detail: errors.New("the unlock prompt was dismissed")}
			}
			return nil
		case <-ctx.Done():
			c.Object(ssName, prompt).Call(slPrompt+".Dismiss", 0)
			return fmt.Errorf("waiting for the unlock prompt: %w", ctx.Err())
		}
	}
}

// translateSSError maps a D-Bus error of the Secret Service to the
// package's sentinels.
func translateSSError(err error) error {
	switch {
	case isNoKeychain(err):
		return &causeError{sentinel: ErrNoKeychain, detail: err}
	case isLocked(err):
		return &causeError{sentinel: ErrKeychainLocked, detail: err}
	}
	return fmt.Errorf("secret service: %w", err)
}

// getProperty reads a D-Bus property, bounded by ctx (BusObject.GetProperty
// has no context).
func getProperty(ctx context.Context, o dbus.BusObject, name string) (dbus.Variant, error) {
	i := strings.LastIndexByte(name, '.')
	var v dbus.Variant
	err := o.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, name[:i], name[i+1:]).Store(&v)
	return v, err
}
