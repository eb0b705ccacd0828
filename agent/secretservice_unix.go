//go:build linux || freebsd || openbsd || netbsd || dragonfly

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// Secret Service names (https://specifications.freedesktop.org/secret-service-spec/latest/).
const (
	ssName        = "org.freedesktop.secrets"
	ssPath        = dbus.ObjectPath("/org/freedesktop/secrets")
	ssService     = "org.freedesktop.Secret.Service"
	ssCollection  = "org.freedesktop.Secret.Collection"
	ssItem        = "org.freedesktop.Secret.Item"
	ssSession     = "org.freedesktop.Secret.Session"
	ssLogin       = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	ssDefault     = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
	busName       = "org.freedesktop.DBus"
	nameOwnerSig  = busName + ".NameOwnerChanged"
	watchInterval = 2 * time.Second
)

// ssSecret is the Secret struct of the spec, signature (oayays).
type ssSecret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// ssConn writes secrets to the Secret Service over one D-Bus
// connection with one open session, kept across writes: a write is then a
// single CreateItem call, where go-keyring opens a session, looks up and
// unlocks the collection, writes and closes the session, every time. The
// connection is re-made when it drops, and the session when the service
// is replaced (NameOwnerChanged) or refuses it. Items are the ones
// go-keyring reads: attributes service and username, the same label, in
// the login collection (else the default alias), replacing any previous
// one.
//
// It never starts a bus: with no DBUS_SESSION_BUS_ADDRESS and no
// $XDG_RUNTIME_DIR/bus it fails. It never prompts: a locked collection is
// an org.freedesktop.Secret.Error.IsLocked error. Every call is bounded by
// timeout. It is safe for concurrent use.
type ssConn struct {
	timeout time.Duration

	mu      sync.Mutex // guards conn, session, coll, onBack, dropped
	conn    *dbus.Conn
	session dbus.ObjectPath // "" when none is open
	coll    dbus.ObjectPath
	onBack  []func()
	dropped bool // the connection was lost since the last call to onBack
}

func newSSConn(timeout time.Duration) *ssConn {
	return &ssConn{timeout: timeout}
}

// sessionBusAddress is the session bus to use, without autolaunch.
func sessionBusAddress() (string, error) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		p := filepath.Join(d, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == os.ModeSocket {
			return "unix:path=" + p, nil
		}
	}
	return "", errors.New("couldn't determine address of session bus (no DBUS_SESSION_BUS_ADDRESS)")
}

// connect makes the connection and subscribes to the Secret Service's
// NameOwnerChanged. Called with s.mu held.
func (s *ssConn) connect(ctx context.Context) error {
	addr, err := sessionBusAddress()
	if err != nil {
		return err
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return err
	}
	// https://dbus.freedesktop.org/doc/dbus-specification.html#bus-messages-name-owner-changed
	if err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(busName), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, ssName)); err != nil {
		conn.Close()
		return err
	}
	ch := make(chan *dbus.Signal, 8)
	conn.Signal(ch)
	go s.signals(conn, ch)
	s.conn, s.session, s.coll = conn, "", ""
	return nil
}

// signals follows NameOwnerChanged of the Secret Service on conn: a new
// owner means the old session is gone, and that writes may succeed again.
func (s *ssConn) signals(conn *dbus.Conn, ch chan *dbus.Signal) {
	gone := func() {
		s.mu.Lock()
		if s.conn == conn {
			s.conn, s.session, s.dropped = nil, "", true
		}
		s.mu.Unlock()
	}
	for {
		select {
		case <-conn.Context().Done():
			gone()
			return
		case sig, ok := <-ch:
			if !ok {
				gone()
				return
			}
			if sig == nil || sig.Name != nameOwnerSig || len(sig.Body) < 3 {
				continue
			}
			newOwner, _ := sig.Body[2].(string)
			s.mu.Lock()
			if s.conn == conn {
				s.session = ""
			}
			back := slices.Clone(s.onBack)
			s.mu.Unlock()
			if newOwner != "" {
				for _, f := range back {
					f()
				}
			}
		}
	}
}

// busConn returns the connection, made when there is none or it dropped,
// for the lock watcher (sslock_unix.go), which shares it.
func (s *ssConn) busConn(ctx context.Context) (*dbus.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || !s.conn.Connected() {
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
	}
	return s.conn, nil
}

// ensure makes the connection and opens the session when needed. Called
// with s.mu held.
func (s *ssConn) ensure(ctx context.Context) error {
	if s.conn == nil || !s.conn.Connected() {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	if s.session != "" {
		return nil
	}
	svc := s.conn.Object(ssName, ssPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	// "plain": the secret travels unencrypted over the session bus, which
	// only this user can reach (what go-keyring and libsecret do too).
	if err := svc.CallWithContext(ctx, ssService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		return err
	}
	coll := ssDefault
	if v, err := svc.GetProperty(ssService + ".Collections"); err == nil {
		if paths, ok := v.Value().([]dbus.ObjectPath); ok && slices.Contains(paths, ssLogin) {
			coll = ssLogin
		}
	}
	s.session, s.coll = session, coll
	return nil
}

// Set stores pass for (service, user), replacing an existing item.
func (s *ssConn) Set(service, user, pass string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for try := 0; try < 2; try++ {
		if err = s.ensure(ctx); err != nil {
			return err
		}
		if err = s.createItem(ctx, service, user, pass); err == nil || !staleSession(err) {
			return err
		}
		// The session or connection is gone (the service restarted): re-make
		// them once.
		s.session = ""
		if errors.Is(err, dbus.ErrClosed) && s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
	}
	return err
}

func (s *ssConn) createItem(ctx context.Context, service, user, pass string) error {
	props := map[string]dbus.Variant{
		ssItem + ".Label":      dbus.MakeVariant(fmt.Sprintf("Password for '%s' on '%s'", user, service)),
		ssItem + ".Attributes": dbus.MakeVariant(map[string]string{"username": user, "service": service}),
	}
	secret := ssSecret{Session: s.session, Parameters: []byte{}, Value: []byte(pass), ContentType: "text/plain; charset=utf8"}
	var item, prompt dbus.ObjectPath
	if err := s.conn.Object(ssName, s.coll).CallWithContext(ctx, ssCollection+".CreateItem", 0, props, secret, true).Store(&item, &prompt); err != nil {
		return err
	}
	if prompt != "/" {
		// A prompt to create an item means the collection needs the user: a
		// background write does not show it.
		s.conn.Object(ssName, prompt).CallWithContext(ctx, "org.freedesktop.Secret.Prompt.Dismiss", 0)
		return dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked", Body: []any{"the collection asks for a prompt"}}
	}
	return nil
}

// staleSession reports whether err says the session or the connection no
// longer exists.
func staleSession(err error) bool {
	if errors.Is(err, dbus.ErrClosed) {
		return true
	}
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.Secret.Error.NoSession", "org.freedesktop.DBus.Error.UnknownObject",
			"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NoReply",
			"org.freedesktop.DBus.Error.Disconnected":
			return true
		}
	}
	return false
}

// watch calls onBack each time the Secret Service appears on the session
// bus (NameOwnerChanged with a new owner) or the bus connection is made
// again after it dropped, until ctx ends.
func (s *ssConn) watch(ctx context.Context, onBack func()) {
	s.mu.Lock()
	s.onBack = append(s.onBack, onBack)
	s.mu.Unlock()
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.conn == nil || !s.conn.Connected() {
			cctx, cancel := context.WithTimeout(ctx, s.timeout)
			s.connect(cctx)
			cancel()
		}
		// Back after a drop, whoever made the connection again: this loop,
		// a write, or the lock watcher's check (busConn).
		reconnected := s.dropped && s.conn != nil && s.conn.Connected()
		if reconnected {
			s.dropped = false
		}
		s.mu.Unlock()
		if reconnected {
			onBack()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ssKeyring is the platform keychain here: writes over the kept
// ssConn session, reads and deletes through go-keyring.
type ssKeyring struct {
	globalKeyring
	ss *ssConn
}

func (k ssKeyring) Set(service, user, password string) error {
	return k.ss.Set(service, user, password)
}

// platformKeyring returns the keyring provider of NewKeychain.
func platformKeyring(timeout time.Duration) keyring.Keyring {
	return ssKeyring{ss: newSSConn(timeout)}
}

// watchKeyring runs kr's Secret Service watch (see ssConn.watch),
// when it has one.
func watchKeyring(ctx context.Context, kr keyring.Keyring, onBack func()) {
	if k, ok := kr.(ssKeyring); ok {
		k.ss.watch(ctx, onBack)
	}
}
