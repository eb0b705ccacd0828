//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/ncagent/ncagent/ipc"
)

const outageChildEnv = "NCAGENT_TEST_OUTAGE_CHILD"

// privateKeyring is a gnome-keyring on a private session bus that offers
// no activatable services (so nothing restarts it behind the test's back),
// with a known password so that it can be killed and started again.
type privateKeyring struct {
	t        *testing.T
	bus      *dbus.Conn
	password string
	env      []string
}

// startPrivateBus starts dbus-daemon with no service directories and
// points this process at it. Only a fresh child process may call it: the
// D-Bus clients of the process must not have connected yet.
func startPrivateBus(t *testing.T) *privateKeyring {
	t.Helper()
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		t.Skip("needs gnome-keyring-daemon")
	}
	dir := t.TempDir()
	sock := startDBusDaemon(t, dir)
	addr := "unix:path=" + sock
	data := filepath.Join(dir, "data")
	os.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	os.Setenv("XDG_DATA_HOME", data)
	os.Setenv("NCAGENT_TEST_SECRET_SERVICE", "1")
	bus, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	k := &privateKeyring{t: t, bus: bus, password: fmt.Sprintf("pw-%d", time.Now().UnixNano()),
		env: append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "XDG_DATA_HOME="+data)}
	k.start()
	t.Cleanup(func() {
		if pid := k.pid(); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return k
}

// start runs gnome-keyring-daemon, unlocked with the password, and waits
// until it owns the Secret Service name.
func (k *privateKeyring) start() {
	k.t.Helper()
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize")
	cmd.Env = k.env
	cmd.Stdin = strings.NewReader(k.password)
	if out, err := cmd.CombinedOutput(); err != nil {
		k.t.Fatalf("gnome-keyring-daemon: %v: %s", err, out)
	}
	for deadline := time.Now().Add(5 * time.Second); k.pid() <= 0; {
		if time.Now().After(deadline) {
			k.t.Fatal("gnome-keyring-daemon did not take the Secret Service name")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// pid is the process owning the Secret Service name, 0 when none.
func (k *privateKeyring) pid() int {
	var pid uint32
	if err := k.bus.Object("org.freedesktop.DBus", "/org/freedesktop/DBus").Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, ssName).Store(&pid); err != nil {
		return 0
	}
	return int(pid)
}

// kill SIGKILLs the keyring and waits until its name is gone.
func (k *privateKeyring) kill() {
	k.t.Helper()
	pid := k.pid()
	if pid <= 0 {
		k.t.Fatal("no keyring to kill")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for k.pid() > 0 {
		time.Sleep(2 * time.Millisecond)
	}
}

// inPrivateKeyringChild reports whether the test runs in its child
// process, where it may start its own bus and keyring; otherwise it runs
// the test there and reports its result.
func inPrivateKeyringChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(outageChildEnv) != "" {
		return true
	}
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		t.Skip("needs gnome-keyring-daemon")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), outageChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skipf("child skipped:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	return false
}

// TestKeychainPutLockedCollection: a write to a locked collection over the
// kept session fails at once with ErrKeychainLocked (no prompt shown from
// the background), and succeeds again once the keyring is unlocked.
func TestKeychainPutLockedCollection(t *testing.T) {
	if !inPrivateKeyringChild(t) {
		return
	}
	kr := startPrivateBus(t)
	k := NewKeychain("ncagent-locked-test", 2*time.Second)
	if err := k.Put("work", "rt-before-lock"); err != nil {
		t.Fatalf("put: %v", err)
	}
	var unlocked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := kr.bus.Object(ssName, ssPath).Call(ssService+".Lock", 0, []dbus.ObjectPath{ssLogin}).Store(&unlocked, &prompt); err != nil {
		t.Fatalf("lock: %v", err)
	}
	begin := time.Now()
	err := k.Put("work", "rt-while-locked")
	if !errors.Is(err, ErrKeychainLocked) {
		t.Fatalf("put to a locked collection: got %v, want ErrKeychainLocked", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("the refused put took %s, want it at once", d)
	}
	// Unlocking needs the password: start the keyring again with it.
	kr.kill()
	kr.start()
	if err := k.Put("work", "rt-after-unlock"); err != nil {
		t.Fatalf("put after unlock: %v", err)
	}
	if got, err := k.Get("work"); err != nil || got != "rt-after-unlock" {
		t.Fatalf("get: got (%d bytes, %v), want the last secret", len(got), err)
	}
}

// TestKeyringOutage: the keyring is killed between the writable check of a
// refresh and its write, so the rotated refresh token cannot be stored
// (the write fails, again and again; further refreshes are not sent:
// store_locked), and 0.1 s later the keyring is back: the pending write
// lands within 1 s of its return (the Secret Service reappearing on the
// bus is the signal), not after a long backoff, and the chain is intact.
func TestKeyringOutage(t *testing.T) {
	if !inPrivateKeyringChild(t) {
		return
	}
	kr := startPrivateBus(t)
	r := newChainRig(t)
	killedAt := make(chan time.Time, 1)
	armed := &afterCheck{Keychain: r.kc}
	r.store = armed
	r.stopWithin = 15 * time.Second
	rn := r.start(t)
	defer rn.stop(t)
	ctx := context.Background()
	if _, err := rn.client.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Fatal(err)
	}

	armed.arm(func() { killedAt <- time.Now(); kr.kill() })
	// The rotation whose write fails: the keyring dies after the check
	// (of this refresh, or of a keep-alive refresh that ran first, which
	// then leaves this one store_locked).
	_, err := rn.client.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: scopeSets[1]})
	if we := (*ipc.Error)(nil); err != nil && (!errors.As(err, &we) || we.Code != ipc.CodeStoreLocked) {
		t.Fatalf("refresh as the keyring dies: %v", err)
	}
	var killed time.Time
	select {
	case killed = <-killedAt:
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh passed the writable check")
	}
	// Refreshes while the keyring is gone are not sent (issue 10: never
	// rotate what cannot be stored); the pending write keeps failing.
	for _, sc := range scopeSets[2:8] {
		_, err := rn.client.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: sc})
		if we := (*ipc.Error)(nil); !errors.As(err, &we) || we.Code != ipc.CodeStoreLocked {
			t.Fatalf("refresh during the outage: got %v, want store_locked", err)
		}
	}
	st, err := rn.client.Status(ctx)
	if err != nil || len(st.Accounts) != 1 || !st.Accounts[0].Degraded {
		t.Fatalf("got status %+v (%v), want the account degraded (write pending)", st, err)
	}
	time.Sleep(time.Until(killed.Add(100 * time.Millisecond)))
	kr.start()
	back := time.Now()
	for {
		st, err := rn.client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Accounts[0].Degraded {
			break
		}
		if time.Since(back) > 10*time.Second {
			t.Fatal("the pending write did not land within 10s of the keyring's return")
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(back)
	t.Logf("keyring gone %s; the pending write landed %s after it returned", back.Sub(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the pending write landed %s after the keyring returned, want within 1s", took)
	}
	r.grantAlive(t, "after the outage")
}
