package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/ncagent/ncagent/broker"
)

// Store kinds of [agent] store.
const (
	StoreAuto     = ""         // the keychain; the file store when there is no keychain and the user chose it
	StoreKeychain = "keychain" // the OS keychain only
	StoreFile     = "file"     // the age file store only
)

// FileStorePath returns where the file store keeps its secrets:
// $NCAGENT_FILE_STORE when set; for the default config path, secrets.age in
// the ncagent directory of the user state dir ($XDG_STATE_HOME, default
// ~/.local/state; on macOS and Windows the user config dir); for any other
// config path, ncagent-secrets/secrets.age beside it, so that two configs
// never share secrets.
func FileStorePath(configPath string) (string, error) {
	if p := os.Getenv("NCAGENT_FILE_STORE"); p != "" {
		return p, nil
	}
	def, err := defaultConfigPath()
	if err != nil || filepath.Clean(configPath) != filepath.Clean(def) {
		return filepath.Join(filepath.Dir(configPath), "ncagent-secrets", "secrets.age"), nil
	}
	dir, err := userStateDir()
	if err != nil {
		return "", fmt.Errorf("file store: locate the state dir: %w (set NCAGENT_FILE_STORE)", err)
	}
	return filepath.Join(dir, "ncagent", "secrets.age"), nil
}

// switchStore is the agent's SecretStore when it chose the store itself
// (Options.Store unset): the keychain or the file store, as [agent] store
// says. In auto mode it uses the keychain, and moves to the file store (one
// log line, and status says so) when no keychain can be reached and the
// user unlocks a file store (ncagent unlock), or one already exists.
type switchStore struct {
	mode string
	kc   *Keychain
	fs   *FileStore
	log  *slog.Logger

	mu      sync.RWMutex // guards useFile
	useFile bool
}

var _ SecretStore = (*switchStore)(nil)

// newSwitchStore returns the store for [agent] store = mode.
func newSwitchStore(mode string, kc *Keychain, fs *FileStore, log *slog.Logger) (*switchStore, error) {
	s := &switchStore{mode: mode, kc: kc, fs: fs, log: log}
	switch mode {
	case StoreKeychain:
	case StoreFile:
		s.useFile = true
		log.Info("secrets are kept in the encrypted file store: run ncagent unlock to open it", "path", fs.Path())
	case StoreAuto:
		if fs.Exists() && errors.Is(kc.StoreState(context.Background()), ErrNoKeychain) {
			s.useFile = true
			log.Info("no Secret Service can be reached: secrets are kept in the encrypted file store; run ncagent unlock to open it", "path", fs.Path())
		}
	default:
		return nil, fmt.Errorf("config: [agent] store = %q: use \"keychain\", \"file\" or leave it out", mode)
	}
	return s, nil
}

func (s *switchStore) cur() SecretStore {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.useFile {
		return s.fs
	}
	return s.kc
}

// file returns the file store when it is in use.
func (s *switchStore) file() (*FileStore, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.fs, s.useFile
}

// toFile moves an auto store to the file store, because no keychain can be
// reached and the user chose the file store. It reports whether it did.
func (s *switchStore) toFile() bool {
	if s.mode != StoreAuto {
		return false
	}
	s.mu.Lock()
	moved := !s.useFile
	s.useFile = true
	s.mu.Unlock()
	if moved {
		s.log.Info("no Secret Service can be reached: secrets are kept in the encrypted file store from now on", "path", s.fs.Path())
	}
	return moved
}

func (s *switchStore) Get(account string) (broker.Secret, error) { return s.cur().Get(account) }
func (s *switchStore) Put(account string, secret broker.Secret) error {
	return s.cur().Put(account, secret)
}
func (s *switchStore) Delete(account string) error { return s.cur().Delete(account) }
func (s *switchStore) GetClientSecret(account string) (broker.Secret, error) {
	return s.cur().GetClientSecret(account)
}
func (s *switchStore) PutClientSecret(account string, secret broker.Secret) error {
	return s.cur().PutClientSecret(account, secret)
}
func (s *switchStore) DeleteClientSecret(account string) error {
	return s.cur().DeleteClientSecret(account)
}

// Writable implements broker.WritableStore for the store in use.
func (s *switchStore) Writable(ctx context.Context) error {
	if f, ok := s.file(); ok {
		return f.Writable(ctx)
	}
	return s.kc.Writable(ctx)
}

// StoreState reports whether the store in use can be used now.
func (s *switchStore) StoreState(ctx context.Context) error {
	if f, ok := s.file(); ok {
		return f.StoreState(ctx)
	}
	return s.kc.StoreState(ctx)
}

// openStore makes the agent's store as [agent] says (Options.Store unset).
func openStore(opts Options, ac AgentConfig) (SecretStore, error) {
	path := opts.FileStorePath
	if path == "" {
		p, err := FileStorePath(opts.ConfigPath)
		if err != nil {
			return nil, err
		}
		path = p
	}
	idFile, err := expandHome(ac.IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("config: [agent] identity_file: %w", err)
	}
	fs := NewFileStore(FileStoreOptions{Path: path, IdentityFile: idFile})
	s, err := newSwitchStore(ac.Store, NewKeychain(opts.KeychainService, 0), fs, opts.Logger)
	if err != nil {
		return nil, err
	}
	if _, ok := s.file(); ok && idFile != "" && fs.Exists() {
		// The identity is the user's file: no passphrase to wait for.
		if err := fs.Unlock(nil, false); err != nil {
			opts.Logger.Warn("file store not unlocked with the identity file", "err", err.Error())
		}
	}
	return s, nil
}

// expandHome is expandPath for an optional setting: empty stays empty.
func expandHome(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return expandPath(p)
}
