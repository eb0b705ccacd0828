package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"

	"github.com/ncagent/ncagent/broker"
)

// File store errors; errors of FileStore wrap one of these (or
// broker.ErrNotFound, ErrFileStoreLocked) when the cause is known.
var (
	// ErrNoFileStore: there is no file store yet; Unlock with create makes one.
	ErrNoFileStore = errors.New("there is no file store yet: run ncagent unlock to create one")
	// ErrWrongPassphrase: the passphrase or identity does not open the store.
	ErrWrongPassphrase = errors.New("wrong passphrase or identity: the file store was not opened")
	// ErrFileStoreDamaged: the file cannot be read; it is left as it is.
	ErrFileStoreDamaged = errors.New("the file store cannot be read, so ncagent leaves it untouched")
	// ErrFileStoreUnsafe: the file or its directory is not the user's
	// alone (another owner, group or world access, a symlink).
	ErrFileStoreUnsafe = errors.New("not private to you, so ncagent does not use it")
)

// maxFileStoreSize bounds the files the FileStore reads.
const maxFileStoreSize = 1 << 20

// fileStoreVersion is the version of the decrypted document.
const fileStoreVersion = 1

// fileDoc is the decrypted content of the secrets file.
type fileDoc struct {
	Version int               `json:"version"`
	Secrets map[string]string `json:"secrets"` // by keychain user: account, or account + "#client-secret"
}

// FileStore is a SecretStore for machines without a keychain: every secret
// in one file encrypted with age (filippo.io/age), never in plain text.
//
// The file (secrets.age) is encrypted to an age X25519 identity. With a
// passphrase, that identity is the store's own, kept beside it in key.age
// encrypted to the passphrase (age scrypt): the slow passphrase
// derivation runs once per unlock, not on every rotation. With an
// identity file (identity_file in [agent]), the file is encrypted to the
// recipient of the user's identity and there is no key.age.
//
// The identity is kept in memory only, from Unlock to Lock. While locked,
// Get, Put and Delete fail with ErrFileStoreLocked and Writable says so, so
// the broker sends no refresh grant. Every Put re-encrypts the whole file
// and replaces it atomically (temporary file, fsync, rename, fsync of the
// directory). The directory must be 0700 and the files 0600, owned by the
// user, not symlinks; a file that is unsafe or cannot be decrypted is
// refused with a clear error and never overwritten.
//
// A FileStore is safe for concurrent use. Errors never carry a secret.
type FileStore struct {
	path         string // the secrets file
	keyPath      string // the passphrase-encrypted store identity (passphrase mode)
	identityFile string // the user's age identity file; "" for passphrase mode
	workFactor   int    // scrypt log2(N) for a new key.age; 0: age's default

	mu      sync.Mutex        // guards the fields below
	id      age.Identity      // nil: locked
	rcp     age.Recipient     // encrypts the secrets file; set with id
	secrets map[string]string // decrypted, while unlocked
}

var _ SecretStore = (*FileStore)(nil)

// FileStoreOptions configure NewFileStore.
type FileStoreOptions struct {
	// Path of the secrets file; default FileStorePath.
	Path string
	// IdentityFile, when set, is an age identity file the store is
	// encrypted to, instead of a passphrase.
	IdentityFile string
	// WorkFactor is the scrypt work factor (log2 N) of a new passphrase key
	// file; 0 is age's default. Tests lower it.
	WorkFactor int
}

// NewFileStore returns a locked FileStore. It touches no file.
func NewFileStore(opts FileStoreOptions) *FileStore {
	return &FileStore{
		path:         opts.Path,
		keyPath:      filepath.Join(filepath.Dir(opts.Path), "key.age"),
		identityFile: opts.IdentityFile,
		workFactor:   opts.WorkFactor,
	}
}

// Path returns the path of the secrets file.
func (f *FileStore) Path() string { return f.path }

// Exists reports whether the store was created (its secrets file exists).
func (f *FileStore) Exists() bool {
	_, err := os.Lstat(f.path)
	return err == nil
}

// Locked reports whether the store's key is not in memory.
func (f *FileStore) Locked() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id == nil
}

// Lock forgets the key and the decrypted secrets.
func (f *FileStore) Lock() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.id, f.rcp, f.secrets = nil, nil, nil
}

// Writable implements broker.WritableStore: nil while unlocked.
func (f *FileStore) Writable(ctx context.Context) error { return f.StoreState(ctx) }

// StoreState returns nil while unlocked, else an error wrapping
// ErrFileStoreLocked (or ErrNoFileStore when there is none yet).
func (f *FileStore) StoreState(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id != nil {
		return nil
	}
	if !f.Exists() {
		return fmt.Errorf("file store %s: %w: %w", f.path, ErrFileStoreLocked, ErrNoFileStore)
	}
	return fmt.Errorf("file store %s: %w", f.path, ErrFileStoreLocked)
}

// Get returns the account's secret, or an error wrapping broker.ErrNotFound.
func (f *FileStore) Get(account string) (broker.Secret, error) {
	return f.get("get", account, account)
}

// Put stores the account's secret, re-encrypting the file.
func (f *FileStore) Put(account string, secret broker.Secret) error {
	return f.put("put", account, account, secret)
}

// Delete removes the account's secret; a missing one is not an error.
func (f *FileStore) Delete(account string) error {
	return f.put("delete", account, account, "")
}

// GetClientSecret returns the OIDC client secret of account.
func (f *FileStore) GetClientSecret(account string) (broker.Secret, error) {
	return f.get("get client secret", account, account+clientSecretSuffix)
}

// PutClientSecret stores the OIDC client secret of account.
func (f *FileStore) PutClientSecret(account string, secret broker.Secret) error {
	return f.put("put client secret", account, account+clientSecretSuffix, secret)
}

// DeleteClientSecret removes the OIDC client secret of account.
func (f *FileStore) DeleteClientSecret(account string) error {
	return f.put("delete client secret", account, account+clientSecretSuffix, "")
}

func (f *FileStore) get(op, account, key string) (broker.Secret, error) {
	if err := checkKeychainAccount(account); err != nil {
		return "", fmt.Errorf("file store: %s %q: %w", op, account, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == nil {
		return "", fmt.Errorf("file store: %s %q: %w", op, account, ErrFileStoreLocked)
	}
	s, ok := f.secrets[key]
	if !ok {
		return "", fmt.Errorf("file store: %s %q: %w", op, account, broker.ErrNotFound)
	}
	return broker.Secret(s), nil
}

// put stores secret under key, or deletes key when secret is empty.
func (f *FileStore) put(op, account, key string, secret broker.Secret) error {
	if err := checkKeychainAccount(account); err != nil {
		return fmt.Errorf("file store: %s %q: %w", op, account, err)
	}
	if n := len(secret.Reveal()); n > MaxSecretSize {
		return fmt.Errorf("file store: %s %q: %w: %d bytes, the limit is %d", op, account, ErrSecretTooLarge, n, MaxSecretSize)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == nil {
		return fmt.Errorf("file store: %s %q: %w", op, account, ErrFileStoreLocked)
	}
	next := make(map[string]string, len(f.secrets)+1)
	for k, v := range f.secrets {
		next[k] = v
	}
	if secret == "" {
		if _, ok := next[key]; !ok {
			return nil
		}
		delete(next, key)
	} else {
		next[key] = secret.Reveal()
	}
	if err := f.writeSecrets(next); err != nil {
		return fmt.Errorf("file store: %s %q: %w", op, account, err)
	}
	f.secrets = next
	return nil
}

// writeSecrets encrypts secrets to f.rcp and replaces the file. Called
// with f.mu held and the store unlocked.
func (f *FileStore) writeSecrets(secrets map[string]string) error {
	plain, err := json.Marshal(fileDoc{Version: fileStoreVersion, Secrets: secrets})
	if err != nil {
		return err
	}
	defer clear(plain)
	return writeAtomic(f.path, true, func(w io.Writer) error {
		aw, err := age.Encrypt(w, f.rcp)
		if err != nil {
			return err
		}
		if _, err := aw.Write(plain); err != nil {
			return err
		}
		return aw.Close()
	})
}

// Unlock opens the store with a passphrase (passphrase mode) or with the
// identity file (identity mode; passphrase is ignored) and keeps the key in
// memory. With create, a missing store is created (empty); without, a
// missing store is ErrNoFileStore. A wrong passphrase is
// ErrWrongPassphrase; an unsafe or unreadable file is refused and left as
// it is.
func (f *FileStore) Unlock(passphrase []byte, create bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := checkPrivateDir(filepath.Dir(f.path), create); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("file store: unlock %s: %w", f.path, ErrNoFileStore)
		}
		return fmt.Errorf("file store: unlock: %w", err)
	}
	var id age.Identity
	var rcp age.Recipient
	var err error
	if f.identityFile != "" {
		id, rcp, err = loadIdentityFile(f.identityFile)
	} else {
		id, rcp, err = f.passphraseKey(passphrase, create)
	}
	if err != nil {
		return fmt.Errorf("file store: unlock: %w", err)
	}
	secrets, err := f.readSecrets(id)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return fmt.Errorf("file store: unlock %s: %w", f.path, ErrNoFileStore)
		}
		f.id, f.rcp = id, rcp
		if err := f.writeSecrets(map[string]string{}); err != nil {
			f.id, f.rcp = nil, nil
			return fmt.Errorf("file store: create %s: %w", f.path, err)
		}
		f.secrets = map[string]string{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("file store: unlock: %w", err)
	}
	f.id, f.rcp, f.secrets = id, rcp, secrets
	return nil
}

// readSecrets decrypts the secrets file with id.
func (f *FileStore) readSecrets(id age.Identity) (map[string]string, error) {
	data, err := readPrivate(f.path)
	if err != nil {
		return nil, err
	}
	plain, err := decrypt(f.path, data, id)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	var doc fileDoc
	if err := json.Unmarshal(plain, &doc); err != nil || doc.Version != fileStoreVersion || doc.Secrets == nil {
		return nil, fmt.Errorf("%s: %w: not an ncagent file store (version %d)", f.path, ErrFileStoreDamaged, doc.Version)
	}
	return doc.Secrets, nil
}

// decrypt decrypts the age file data read from path with id, telling a
// key that does not fit (ErrWrongPassphrase) from a damaged file.
func decrypt(path string, data []byte, id age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		if _, ok := errors.AsType[*age.NoIdentityMatchError](err); ok {
			return nil, fmt.Errorf("%s: %w", path, ErrWrongPassphrase)
		}
		return nil, fmt.Errorf("%s: %w (%v): restore it from a backup, or move it away and sign in again", path, ErrFileStoreDamaged, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxFileStoreSize))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v): restore it from a backup, or move it away and sign in again", path, ErrFileStoreDamaged, err)
	}
	return plain, nil
}

// passphraseKey returns the store's identity from key.age, opened with
// passphrase; with create, a missing key.age is made for a new store.
func (f *FileStore) passphraseKey(passphrase []byte, create bool) (age.Identity, age.Recipient, error) {
	if len(passphrase) == 0 {
		return nil, nil, errors.New("empty passphrase")
	}
	data, err := readPrivate(f.keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if f.Exists() {
			return nil, nil, fmt.Errorf("%s: %w: its key file %s is missing", f.path, ErrFileStoreDamaged, f.keyPath)
		}
		if !create {
			return nil, nil, fmt.Errorf("%s: %w", f.path, ErrNoFileStore)
		}
		return f.newPassphraseKey(passphrase)
	}
	if err != nil {
		return nil, nil, err
	}
	si, err := age.NewScryptIdentity(string(passphrase))
	if err != nil {
		return nil, nil, err
	}
	plain, err := decrypt(f.keyPath, data, si)
	if err != nil {
		return nil, nil, err
	}
	defer clear(plain)
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(plain)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: not an age identity", f.keyPath, ErrFileStoreDamaged)
	}
	return id, id.Recipient(), nil
}

// newPassphraseKey makes the store's identity and writes it to key.age,
// encrypted to passphrase.
func (f *FileStore) newPassphraseKey(passphrase []byte) (age.Identity, age.Recipient, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, err
	}
	sr, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return nil, nil, err
	}
	if f.workFactor > 0 {
		sr.SetWorkFactor(f.workFactor)
	}
	err = writeAtomic(f.keyPath, true, func(w io.Writer) error {
		aw, err := age.Encrypt(w, sr)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(aw, id.String()+"\n"); err != nil {
			return err
		}
		return aw.Close()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", f.keyPath, err)
	}
	return id, id.Recipient(), nil
}

// loadIdentityFile reads the first age identity of the user's identity
// file and the recipient the store is encrypted to.
func loadIdentityFile(path string) (age.Identity, age.Recipient, error) {
	data, err := readPrivate(path)
	if err != nil {
		return nil, nil, fmt.Errorf("identity file: %w", err)
	}
	defer clear(data)
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	switch id := ids[0].(type) {
	case *age.X25519Identity:
		return id, id.Recipient(), nil
	case *age.HybridIdentity:
		return id, id.Recipient(), nil
	}
	return nil, nil, fmt.Errorf("identity file %s: unsupported identity type %T", path, ids[0])
}
