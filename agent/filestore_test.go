package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/ncagent/ncagent/broker"
)

// newTestFileStore returns a passphrase FileStore in a fresh private dir,
// with a cheap scrypt work factor.
func newTestFileStore(t *testing.T, path string) *FileStore {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "ncagent", "secrets.age")
	}
	return NewFileStore(FileStoreOptions{Path: path, WorkFactor: 10})
}

func TestFileStoreRoundTrip(t *testing.T) {
	f := newTestFileStore(t, "")
	pass := []byte("correct horse battery staple")
	if err := f.Unlock(pass, false); !errors.Is(err, ErrNoFileStore) {
		t.Fatalf("Unlock of a missing store without create: got %v, want ErrNoFileStore", err)
	}
	if err := f.Unlock(pass, true); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := f.Put("work", testSecret); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(f.Path())
	if err := f.Put("work", testSecret+"-rotated"); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(f.Path())
	if bytes.Equal(first, second) {
		t.Error("the file did not change on rotation: want it re-encrypted")
	}
	if err := f.PutClientSecret("work", "cs-do-not-print"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.Path(), filepath.Join(filepath.Dir(f.Path()), "key.age")} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{testSecret.Reveal(), "cs-do-not-print", string(pass)} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds a secret in plain text", p)
			}
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(filepath.Dir(f.Path())); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", fi.Mode().Perm())
	}
	// A new store (an agent restart) opens it with the passphrase.
	g := newTestFileStore(t, f.Path())
	if _, err := g.Get("work"); !errors.Is(err, ErrFileStoreLocked) {
		t.Fatalf("Get before unlock: got %v, want ErrFileStoreLocked", err)
	}
	if err := g.Writable(t.Context()); !errors.Is(err, ErrFileStoreLocked) {
		t.Fatalf("Writable before unlock: got %v, want ErrFileStoreLocked", err)
	}
	if err := g.Unlock(pass, false); err != nil {
		t.Fatal(err)
	}
	if got, err := g.Get("work"); err != nil || got != testSecret+"-rotated" {
		t.Fatalf("Get after restart: got (%q, %v), want the rotated secret", got, err)
	}
	if got, err := g.GetClientSecret("work"); err != nil || got != "cs-do-not-print" {
		t.Fatalf("GetClientSecret: got (%q, %v)", got, err)
	}
	if err := g.Delete("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	g.Lock()
	if err := g.Put("work", testSecret); !errors.Is(err, ErrFileStoreLocked) {
		t.Fatalf("Put after Lock: got %v, want ErrFileStoreLocked", err)
	}
}

func TestFileStoreRefusesAndLeavesUntouched(t *testing.T) {
	pass := []byte("correct horse battery staple")
	setup := func(t *testing.T) *FileStore {
		f := newTestFileStore(t, "")
		if err := f.Unlock(pass, true); err != nil {
			t.Fatal(err)
		}
		if err := f.Put("work", testSecret); err != nil {
			t.Fatal(err)
		}
		return newTestFileStore(t, f.Path())
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		pass   []byte
		want   error
	}{
		{"wrong passphrase", func(*testing.T, string) {}, []byte("wrong"), ErrWrongPassphrase},
		{"truncated", func(t *testing.T, p string) {
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-20], 0o600)
		}, pass, ErrFileStoreDamaged},
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("not age at all\n"), 0o600) }, pass, ErrFileStoreDamaged},
		{"group readable", func(t *testing.T, p string) { os.Chmod(p, 0o640) }, pass, ErrFileStoreUnsafe},
		{"dir world readable", func(t *testing.T, p string) { os.Chmod(filepath.Dir(p), 0o755) }, pass, ErrFileStoreUnsafe},
		{"symlink", func(t *testing.T, p string) {
			real := p + ".real"
			os.Rename(p, real)
			os.Symlink(real, p)
		}, pass, ErrFileStoreUnsafe},
		{"foreign owner", func(t *testing.T, p string) {
			if os.Getuid() != 0 {
				t.Skip("needs root to give the file to another user")
			}
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, pass, ErrFileStoreUnsafe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			tt.damage(t, f.Path())
			before, _ := os.ReadFile(f.Path())
			err := f.Unlock(tt.pass, true)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unlock: got %v, want %v", err, tt.want)
			}
			if err := f.Put("work", testSecret+"2"); !errors.Is(err, ErrFileStoreLocked) {
				t.Fatalf("Put after a refused unlock: got %v, want ErrFileStoreLocked", err)
			}
			after, _ := os.ReadFile(f.Path())
			if !bytes.Equal(before, after) {
				t.Error("the refused file was changed")
			}
			if bytes.Contains([]byte(err.Error()), []byte(testSecret.Reveal())) {
				t.Error("the error holds the secret")
			}
		})
	}
}

func TestFileStoreIdentityFile(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idPath := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(idPath, []byte("# test identity\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "store", "secrets.age")
	f := NewFileStore(FileStoreOptions{Path: path, IdentityFile: idPath})
	if err := f.Unlock(nil, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Put("work", testSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store", "key.age")); !os.IsNotExist(err) {
		t.Errorf("identity mode wrote key.age: %v", err)
	}
	// The file decrypts with the user's identity (age -d -i key.txt).
	data, _ := os.ReadFile(path)
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		t.Fatalf("decrypt with the identity: %v", err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(r)
	if !bytes.Contains(buf.Bytes(), []byte(testSecret.Reveal())) {
		t.Error("the decrypted file lacks the secret")
	}
	g := NewFileStore(FileStoreOptions{Path: path, IdentityFile: idPath})
	if err := g.Unlock(nil, false); err != nil {
		t.Fatal(err)
	}
	if got, err := g.Get("work"); err != nil || got != testSecret {
		t.Fatalf("Get: got (%q, %v)", got, err)
	}
	other, _ := age.GenerateX25519Identity()
	os.WriteFile(idPath, []byte(other.String()+"\n"), 0o600)
	h := NewFileStore(FileStoreOptions{Path: path, IdentityFile: idPath})
	if err := h.Unlock(nil, false); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unlock with another identity: got %v, want ErrWrongPassphrase", err)
	}
}

// FuzzFileStoreUnlock: whatever bytes are in the secrets file, Unlock
// returns an error or a store, never panics, and never changes the file.
func FuzzFileStoreUnlock(f *testing.F) {
	pass := []byte("fuzz passphrase")
	seedDir := f.TempDir()
	seed := NewFileStore(FileStoreOptions{Path: filepath.Join(seedDir, "s", "secrets.age"), WorkFactor: 2})
	if err := seed.Unlock(pass, true); err != nil {
		f.Fatal(err)
	}
	if err := seed.Put("work", "seed-secret"); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(seed.Path())
	key, _ := os.ReadFile(filepath.Join(seedDir, "s", "key.age"))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n--- AAAA\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), "s")
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "key.age"), key, 0o600)
		p := filepath.Join(dir, "secrets.age")
		os.WriteFile(p, data, 0o600)
		s := NewFileStore(FileStoreOptions{Path: p, WorkFactor: 2})
		if err := s.Unlock(pass, true); err == nil {
			s.Get("work")
			return
		}
		after, _ := os.ReadFile(p)
		if !bytes.Equal(after, data) {
			t.Fatal("a refused file was changed")
		}
	})
}

// TestKeychainWritableProbe: where the lock state cannot be asked (macOS,
// Windows; here a fake keyring), Writable writes and deletes a probe entry
// that no account can collide with.
func TestKeychainWritableProbe(t *testing.T) {
	f := &fakeKeyring{}
	k := NewKeychain("ncagent-test", time.Second)
	k.kr, k.ss = f, nil // a fake: Writable must probe
	if err := k.Writable(t.Context()); err != nil {
		t.Fatalf("Writable: got %v, want nil", err)
	}
	if n := len(f.entries); n != 0 {
		t.Errorf("the probe left %d entries behind", n)
	}
	f.err = errors.New("User interaction is not allowed.") // macOS: locked keychain
	if err := k.Writable(t.Context()); !errors.Is(err, ErrKeychainLocked) {
		t.Fatalf("Writable on a locked keychain: got %v, want ErrKeychainLocked", err)
	}
}
