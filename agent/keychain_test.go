package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/testutil"
)

// fakeKeyring is a keyring.Keyring in memory. When err is set every call
// returns it; when block is set every call waits for it to be closed.
type fakeKeyring struct {
	mu      sync.Mutex // guards entries and calls
	entries map[string]string
	calls   int
	err     error
	block   chan struct{}
}

var _ keyring.Keyring = (*fakeKeyring)(nil)

func (f *fakeKeyring) enter() error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

func (f *fakeKeyring) Set(service, user, password string) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries == nil {
		f.entries = map[string]string{}
	}
	f.entries[service+"\x00"+user] = password
	return nil
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	if err := f.enter(); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.entries[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.entries[service+"\x00"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.entries, service+"\x00"+user)
	return nil
}

func (f *fakeKeyring) DeleteAll(string) error { return errors.New("not implemented") }

func newFakeKeychain(f *fakeKeyring, timeout time.Duration) *Keychain {
	k := NewKeychain("ncagent-test", timeout)
	k.kr = f
	k.ss = nil // a fake, not the Secret Service: no lock state to ask
	return k
}

const testSecret = broker.Secret("rt-7f3a9c-do-not-print")

func TestKeychainDefaults(t *testing.T) {
	k := NewKeychain("", 0)
	if k.service != DefaultKeychainService {
		t.Errorf("service: got %q, want %q", k.service, DefaultKeychainService)
	}
	if k.timeout != DefaultKeychainTimeout {
		t.Errorf("timeout: got %v, want %v", k.timeout, DefaultKeychainTimeout)
	}
}

// TestKeychainErrors checks how keyring errors are translated, with a fake
// provider that fails every call the way the real ones do.
func TestKeychainErrors(t *testing.T) {
	serviceUnknown := dbus.Error{
		Name: "org.freedesktop.DBus.Error.ServiceUnknown",
		Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"},
	}
	dialErr := &net.OpError{Op: "dial", Net: "unix", Err: os.ErrNotExist}
	tests := []struct {
		name     string
		err      error
		want     error
		wantText string
	}{
		{"not found", keyring.ErrNotFound, broker.ErrNotFound, "secret not found"},
		{"too big", keyring.ErrSetDataTooBig, ErrSecretTooLarge, "too large"},
		{"service unknown", serviceUnknown, ErrNoKeychain, "install and unlock gnome-keyring or KeePassXC"},
		{"service unknown text", errors.New("The name org.freedesktop.secrets was not provided by any .service files"), ErrNoKeychain, "no Secret Service on the session bus"},
		{"no bus socket", dialErr, ErrNoKeychain, "no Secret Service on the session bus"},
		{"no bus address", errors.New("dbus: couldn't determine address of session bus"), ErrNoKeychain, "run inside your desktop session"},
		{"no dbus-launch", &exec.Error{Name: "dbus-launch", Err: exec.ErrNotFound}, ErrNoKeychain, "no Secret Service"},
		{"locked", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked", Body: []any{"Cannot get secret of a locked object"}}, ErrKeychainLocked, "the keychain is locked: unlock it"},
		{"unlock dismissed", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), ErrKeychainLocked, "log in to your desktop session"},
		{"other", errors.New("boom"), nil, "boom"},
	}
	ops := []struct {
		name string
		call func(k *Keychain) error
	}{
		{"get", func(k *Keychain) error { _, err := k.Get("work"); return err }},
		{"put", func(k *Keychain) error { return k.Put("work", testSecret) }},
		{"delete", func(k *Keychain) error { return k.Delete("work") }},
		{"get client secret", func(k *Keychain) error { _, err := k.GetClientSecret("work"); return err }},
		{"put client secret", func(k *Keychain) error { return k.PutClientSecret("work", testSecret) }},
		{"delete client secret", func(k *Keychain) error { return k.DeleteClientSecret("work") }},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				k := newFakeKeychain(&fakeKeyring{err: tt.err}, time.Second)
				err := op.call(k)
				if strings.HasPrefix(op.name, "delete") && errors.Is(tt.err, keyring.ErrNotFound) {
					if err != nil {
						t.Fatalf("delete of a missing entry: got %v, want nil", err)
					}
					return
				}
				if err == nil {
					t.Fatal("got nil error")
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("got %v, want it to wrap %v", err, tt.want)
				}
				if prefix := fmt.Sprintf("keychain: %s %q: ", op.name, "work"); !strings.HasPrefix(err.Error(), prefix) {
					t.Errorf("got %q, want prefix %q", err, prefix)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("got %q, want it to contain %q", err, tt.wantText)
				}
				if strings.Contains(err.Error(), testSecret.Reveal()) {
					t.Error("error contains the secret")
				}
			})
		}
	}
}

func TestKeychainTimeout(t *testing.T) {
	f := &fakeKeyring{block: make(chan struct{})}
	k := newFakeKeychain(f, 50*time.Millisecond)

	start := time.Now()
	_, err := k.Get("work")
	if !errors.Is(err, ErrKeychainTimeout) {
		t.Fatalf("got %v, want ErrKeychainTimeout", err)
	}
	if want := `keychain: get "work": the keychain did not answer within 50ms: is an unlock prompt waiting?`; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Get returned after %v, want about 50ms", d)
	}

	// The first call still hangs; the next one waits for it, within its
	// own timeout, instead of piling up another goroutine.
	if err := k.Put("work", testSecret); !errors.Is(err, ErrKeychainTimeout) {
		t.Fatalf("second call: got %v, want ErrKeychainTimeout", err)
	}

	close(f.block) // the unlock prompt was answered
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = k.Put("work", testSecret)
		if err == nil || !errors.Is(err, ErrKeychainTimeout) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the keychain answered: got %v, want nil", err)
	}
	got, err := k.Get("work")
	if err != nil || got != testSecret {
		t.Fatalf("Get: got (%q, %v), want the stored secret", got, err)
	}
}

func TestKeychainRefusesBadInput(t *testing.T) {
	tests := []struct {
		name    string
		account string
		secret  broker.Secret
		want    error
	}{
		{"too large", "work", broker.Secret(strings.Repeat("x", MaxSecretSize+1)), ErrSecretTooLarge},
		{"empty secret", "work", "", nil},
		{"empty account", "", testSecret, nil},
		{"account with #", "work#client-secret", testSecret, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeKeyring{}
			k := newFakeKeychain(f, time.Second)
			err := k.Put(tt.account, tt.secret)
			if err == nil {
				t.Fatal("got nil error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want it to wrap %v", err, tt.want)
			}
			if f.calls != 0 {
				t.Errorf("provider called %d times, want 0", f.calls)
			}
		})
	}
	k := newFakeKeychain(&fakeKeyring{}, time.Second)
	if err := k.Put("work", broker.Secret(strings.Repeat("x", MaxSecretSize))); err != nil {
		t.Errorf("secret of exactly MaxSecretSize: got %v, want nil", err)
	}
}

func TestKeychainScrubsSecretFromErrors(t *testing.T) {
	f := &fakeKeyring{err: fmt.Errorf("item rejected: %s", testSecret.Reveal())}
	k := newFakeKeychain(f, time.Second)
	err := k.Put("work", testSecret)
	if err == nil {
		t.Fatal("got nil error")
	}
	if strings.Contains(err.Error(), testSecret.Reveal()) {
		t.Fatal("error contains the secret")
	}
}

// secretService skips the test unless the real Secret Service is available
// (scripts/test runs the tests inside dbus-run-session with gnome-keyring),
// and returns a Keychain with a service name unique to this test.
func secretService(t *testing.T) *Keychain {
	t.Helper()
	testutil.RequireSecretService(t)
	service := fmt.Sprintf("ncagent-test-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), t.Name())
	t.Cleanup(func() { _ = keyring.DeleteAll(service) })
	return NewKeychain(service, 10*time.Second)
}

func TestKeychainSecretService(t *testing.T) {
	k := secretService(t)

	if _, err := k.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Get of a missing entry: got %v, want ErrNotFound", err)
	}
	if err := k.Delete("work"); err != nil {
		t.Fatalf("Delete of a missing entry: got %v, want nil", err)
	}

	steps := []struct {
		name   string
		secret broker.Secret
	}{
		{"put", testSecret},
		{"overwrite", "rt-second-value"},
		{"unicode and spaces", "pässwörd with spaces ✓"},
		{"max size", broker.Secret(strings.Repeat("a", MaxSecretSize))},
	}
	for _, s := range steps {
		if err := k.Put("work", s.secret); err != nil {
			t.Fatalf("%s: Put: %v", s.name, err)
		}
		got, err := k.Get("work")
		if err != nil {
			t.Fatalf("%s: Get: %v", s.name, err)
		}
		if got != s.secret {
			t.Fatalf("%s: Get returned a different secret (%d bytes, want %d)", s.name, len(got), len(s.secret))
		}
	}

	// The client secret is a separate entry.
	if _, err := k.GetClientSecret("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("GetClientSecret before Put: got %v, want ErrNotFound", err)
	}
	if err := k.PutClientSecret("work", "cs-123"); err != nil {
		t.Fatalf("PutClientSecret: %v", err)
	}
	if got, err := k.GetClientSecret("work"); err != nil || got != "cs-123" {
		t.Fatalf("GetClientSecret: got (%q, %v), want the client secret", got, err)
	}
	if err := k.Delete("work"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := k.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if got, err := k.GetClientSecret("work"); err != nil || got != "cs-123" {
		t.Fatalf("GetClientSecret after Delete of the refresh secret: got (%q, %v), want it kept", got, err)
	}
	if err := k.DeleteClientSecret("work"); err != nil {
		t.Fatalf("DeleteClientSecret: %v", err)
	}
	if _, err := k.GetClientSecret("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("GetClientSecret after DeleteClientSecret: got %v, want ErrNotFound", err)
	}
	if err := k.DeleteClientSecret("work"); err != nil {
		t.Fatalf("DeleteClientSecret of a missing entry: got %v, want nil", err)
	}

	// Too large: refused before it reaches the keychain.
	err := k.Put("work", broker.Secret(strings.Repeat("b", MaxSecretSize+1)))
	if !errors.Is(err, ErrSecretTooLarge) {
		t.Fatalf("Put of a large secret: got %v, want ErrSecretTooLarge", err)
	}
	if _, err := k.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Get after a refused Put: got %v, want ErrNotFound", err)
	}
}

// TestKeychainSecretServiceAccounts checks that accounts do not see each
// other's entries.
func TestKeychainSecretServiceAccounts(t *testing.T) {
	k := secretService(t)
	secrets := map[string]broker.Secret{"work": "rt-work", "home": "rt-home", "a.b-c_d": "rt-abcd"}
	for name, s := range secrets {
		if err := k.Put(name, s); err != nil {
			t.Fatalf("Put %q: %v", name, err)
		}
	}
	for name, s := range secrets {
		got, err := k.Get(name)
		if err != nil || got != s {
			t.Errorf("Get %q: got (%d bytes, %v), want the secret of that account", name, len(got), err)
		}
	}
}

// TestKeychainSecretServiceConcurrentPuts writes one account from several
// goroutines, through one Keychain: the end state is exactly one of the
// values written, and one Delete removes it (no duplicate items).
func TestKeychainSecretServiceConcurrentPuts(t *testing.T) {
	k := secretService(t)
	const n = 8
	written := map[broker.Secret]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		s := broker.Secret(fmt.Sprintf("rt-concurrent-%d", i))
		written[s] = true
		wg.Go(func() { errs <- k.Put("work", s) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	got, err := k.Get("work")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !written[got] {
		t.Fatalf("Get returned a value no Put wrote")
	}
	if err := k.Delete("work"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := k.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound (duplicate items left?)", err)
	}
}

// childEnv names the mode of a re-executed test binary; see
// TestKeychainChild.
const childEnv = "NCAGENT_TEST_KEYCHAIN_CHILD"

// runChild re-executes the test binary to run TestKeychainChild in mode,
// with extra environment, and fails t with the child's output if the child
// failed.
func runChild(t *testing.T, mode string, env ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestKeychainChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + mode}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestKeychainChild") {
		t.Fatalf("child %s: %v\n%s", mode, err, out)
	}
}

// TestKeychainChild runs in a child process only (see runChild), where
// changing the environment or go-keyring's global provider cannot affect
// the other tests.
func TestKeychainChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	switch mode {
	case "":
		t.Skip("runs only in a child process")
	case "no-keychain":
		k := NewKeychain("ncagent-test-child", 2*time.Second)
		start := time.Now()
		_, err := k.Get("work")
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Get took %v, want it bounded by the 2s timeout", d)
		}
		if !errors.Is(err, ErrNoKeychain) {
			t.Fatalf("got %v, want ErrNoKeychain", err)
		}
		want := `keychain: get "work": no Secret Service on the session bus: install and unlock gnome-keyring or KeePassXC, or run inside your desktop session`
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %q, want prefix %q", err, want)
		}
		if err := k.Put("work", testSecret); !errors.Is(err, ErrNoKeychain) {
			t.Fatalf("Put: got %v, want ErrNoKeychain", err)
		} else if strings.Contains(err.Error(), testSecret.Reveal()) {
			t.Fatal("error contains the secret")
		}
	case "mock-error":
		// go-keyring's own mock provider, behind the real package functions.
		tests := []struct {
			err  error
			want error
		}{
			{keyring.ErrSetDataTooBig, ErrSecretTooLarge},
			{errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), ErrKeychainLocked},
			{keyring.ErrNotFound, broker.ErrNotFound},
		}
		for _, tt := range tests {
			keyring.MockInitWithError(tt.err)
			k := NewKeychain("ncagent-test-child", time.Second)
			k.kr = globalKeyring{} // writes too through go-keyring's mock
			k.ss = nil             // go-keyring's mock provider, not the Secret Service
			if err := k.Put("work", testSecret); !errors.Is(err, tt.want) && tt.want != broker.ErrNotFound {
				t.Errorf("Put with %v: got %v, want %v", tt.err, err, tt.want)
			}
			if _, err := k.Get("work"); !errors.Is(err, tt.want) {
				t.Errorf("Get with %v: got %v, want %v", tt.err, err, tt.want)
			}
		}
		keyring.MockInit()
		k := NewKeychain("ncagent-test-child", time.Second)
		k.kr = globalKeyring{}
		k.ss = nil // go-keyring's mock provider, not the Secret Service
		if err := k.Put("work", testSecret); err != nil {
			t.Fatal(err)
		}
		if got, err := k.Get("work"); err != nil || got != testSecret {
			t.Fatalf("Get: got (%q, %v), want the stored secret", got, err)
		}
		if err := k.Delete("work"); err != nil {
			t.Fatal(err)
		}
		if err := k.Delete("work"); err != nil {
			t.Fatalf("Delete of a missing entry: got %v, want nil", err)
		}
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
}

// TestKeychainNoSecretService proves the no-Secret-Service path against
// real D-Bus client code: a session bus address that points nowhere.
func TestKeychainNoSecretService(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Secret Service is Linux only")
	}
	runChild(t, "no-keychain", "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/ncagent-test-bus")
}

// TestKeychainBusWithoutSecretService runs a real, private session bus that
// offers no Secret Service (no service files, so nothing is activated): the
// Keychain must say ErrNoKeychain.
func TestKeychainBusWithoutSecretService(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Secret Service is Linux only")
	}
	sock := startDBusDaemon(t, t.TempDir())
	runChild(t, "no-keychain", "DBUS_SESSION_BUS_ADDRESS=unix:path="+sock)
}

// TestKeychainMockProvider translates errors from go-keyring's own mock
// provider. keyring.MockInitWithError replaces the process-wide provider
// for good, so it runs in a child process.
func TestKeychainMockProvider(t *testing.T) {
	runChild(t, "mock-error")
}

// startDBusDaemon runs a private dbus-daemon with no service directories
// (nothing is ever activated behind a test's back) listening on dir/bus,
// stopped at the end of the test, and returns its socket path.
func startDBusDaemon(t *testing.T, dir string) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("needs dbus-daemon (apt install dbus)")
	}
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	err = os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=`+sock+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--nopidfile")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("dbus-daemon did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
