package agent

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ncagent/ncagent/internal/testutil"
)

// keyringCtl locks and unlocks the real Secret Service collection that the
// Keychain uses (gnome-keyring under scripts/test), as a screen locker or
// the user would.
type keyringCtl struct {
	conn *dbus.Conn
	coll dbus.ObjectPath
}

func newKeyringCtl(t *testing.T) *keyringCtl {
	t.Helper()
	if os.Getenv(ownKeyringEnv) != "1" {
		t.Fatal("newKeyringCtl outside inOwnKeyring: locking the shared keyring disturbs other tests")
	}
	conn := testSessionBus(t)
	w := newSSWatch(platformKeyring(5 * time.Second))
	c, p, err := w.collection(t.Context())
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	if err != nil {
		t.Fatalf("find the collection: %v", err)
	}
	k := &keyringCtl{conn: conn, coll: p}
	t.Cleanup(func() { k.unlock(t) })
	return k
}

// lock locks the collection with org.freedesktop.Secret.Service.Lock.
func (k *keyringCtl) lock(t testing.TB) {
	t.Helper()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err := k.conn.Object(ssName, ssPath).Call(ssService+".Lock", 0, []dbus.ObjectPath{k.coll}).Store(&locked, &prompt)
	if err != nil || prompt != slNoObject {
		t.Fatalf("lock %s: got (%v, prompt %s), want locked without a prompt", k.coll, err, prompt)
	}
}

// unlock unlocks the collection with the keyring's password, through
// gnome-keyring's prompt-less interface (the test has no one to answer a
// prompt).
func (k *keyringCtl) unlock(t testing.TB) {
	t.Helper()
	svc := k.conn.Object(ssName, ssPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(ssService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer k.conn.Object(ssName, session).Call("org.freedesktop.Secret.Session.Close", 0)
	master := struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}{session, []byte{}, []byte(os.Getenv("NCAGENT_TEST_KEYRING_PASSWORD")), "text/plain"}
	if err := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, k.coll, master).Err; err != nil {
		t.Fatalf("unlock %s: %v", k.coll, err)
	}
}

// unlockWatch counts the Secret Service Unlock and Prompt calls anyone
// makes on the session bus (a D-Bus monitor, BecomeMonitor): the proof
// that background requests never ask to unlock.
type unlockWatch struct {
	mu      sync.Mutex // guards unlocks, prompts
	unlocks int
	prompts int
}

func watchUnlocks(t *testing.T) *unlockWatch {
	t.Helper()
	conn := testSessionBus(t)
	rules := []string{
		"type='method_call',interface='org.freedesktop.Secret.Service',member='Unlock'",
		"type='method_call',interface='org.freedesktop.Secret.Prompt',member='Prompt'",
	}
	if err := conn.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, rules, uint32(0)).Err; err != nil {
		t.Fatalf("become a D-Bus monitor: %v", err)
	}
	w := &unlockWatch{}
	ch := make(chan *dbus.Message, 64)
	conn.Eavesdrop(ch)
	go func() {
		for m := range ch {
			member, _ := m.Headers[dbus.FieldMember].Value().(string)
			w.mu.Lock()
			switch member {
			case "Unlock":
				w.unlocks++
			case "Prompt":
				w.prompts++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// counts returns the Unlock and Prompt calls seen so far, after a moment
// for the monitor to catch up.
func (w *unlockWatch) counts() (unlocks, prompts int) {
	time.Sleep(100 * time.Millisecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unlocks, w.prompts
}

// ownKeyringEnv marks the child process inOwnKeyring runs a test in.
const ownKeyringEnv = "NCAGENT_TEST_PRIVATE_KEYRING"

// inOwnKeyring runs the calling test again in a child process, inside a
// D-Bus session and gnome-keyring of its own with a known password: tests
// that lock the keyring would otherwise lock it under the tests of every
// other package sharing the suite's session. It returns true in the child
// (go on with the test) and false in the parent, which has then checked
// the child's result.
func inOwnKeyring(t *testing.T) bool {
	t.Helper()
	if os.Getenv(ownKeyringEnv) == "1" {
		return true
	}
	testutil.RequireSecretService(t)
	for _, bin := range []string{"dbus-run-session", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pass := make([]byte, 12)
	rand.Read(pass)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GNOME_KEYRING_CONTROL=") && !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") {
			env = append(env, kv)
		}
	}
	env = append(env, ownKeyringEnv+"=1", "XDG_DATA_HOME="+t.TempDir(),
		"NCAGENT_TEST_KEYRING_PASSWORD="+hex.EncodeToString(pass), "NCAGENT_TEST_SECRET_SERVICE=1")
	// As scripts/test-session does: an unlocked login keyring with the
	// password, then the test binary.
	const script = `eval "$(printf %s "$NCAGENT_TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets --daemonize)" && export GNOME_KEYRING_CONTROL && exec "$0" "$@"`
	cmd := exec.Command("dbus-run-session", "--", "sh", "-c", script, exe,
		"-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a private keyring: %v\n%s", t.Name(), err, out)
	}
	t.Logf("ran in a private D-Bus session and keyring:\n%s", out)
	return false
}

// ownConnections returns the unique bus names of this process's
// connections to the session bus, as the bus itself reports them.
func ownConnections(t *testing.T, bus *dbus.Conn) map[string]bool {
	t.Helper()
	var names []string
	if err := bus.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
		t.Fatalf("ListNames: %v", err)
	}
	own := map[string]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, ":") {
			continue
		}
		var pid uint32
		if bus.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, n).Store(&pid) == nil && int(pid) == os.Getpid() {
			own[n] = true
		}
	}
	return own
}

// TestKeychainOneConnection: a Keychain's lock checks and its writes
// share one session-bus connection (the bus lists one new connection of
// this process after both), and the check still sees the collection.
func TestKeychainOneConnection(t *testing.T) {
	k := secretService(t)
	bus := testSessionBus(t)
	before := ownConnections(t, bus)
	if err := k.Writable(t.Context()); err != nil {
		t.Fatalf("Writable: %v", err)
	}
	if err := k.Put("work", testSecret); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := k.StoreState(t.Context()); err != nil {
		t.Fatalf("StoreState after the write: %v", err)
	}
	var added []string
	for n := range ownConnections(t, bus) {
		if !before[n] {
			added = append(added, n)
		}
	}
	if len(added) != 1 {
		t.Fatalf("new connections of this process after a check and a write: got %q, want one", added)
	}
}

// testSessionBus connects to the test's session bus as the agent does
// (sessionBusAddress: never an autolaunch), closed at the end of the test.
func testSessionBus(t *testing.T) *dbus.Conn {
	t.Helper()
	addr, err := sessionBusAddress()
	if err != nil {
		t.Fatalf("session bus: %v", err)
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("session bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
