package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
)

// The agent's configuration comes from two files:
//
//   - config.toml (ConfigPath) is the user's. ncagent reads it and never
//     writes it: comments, order and hand-added keys stay as the user left
//     them. A config.toml an older ncagent wrote is read the same way.
//   - the state file (StatePathFor) is ncagent's own: the accounts sign-in
//     added (kind, server, issuer, client id, user, scopes...) and the
//     default account chosen with ncagent default. It is rewritten
//     atomically, under a lock, by the agent and by the account verbs.
//
// Both have the same schema. They are merged field by field: a value set in
// config.toml wins over the state file's.

// stateHeader heads the state file.
const stateHeader = "# Managed by ncagent: the accounts sign-in added and the default account.\n# Do not edit: put your own settings in config.toml, whose values win\n# (see ncagent help config).\n\n"

// StatePathFor returns the state file that goes with the config file at
// configPath: $NCAGENT_STATE when set; for the default config path,
// accounts.toml in the ncagent directory of the user state dir
// ($XDG_STATE_HOME, default ~/.local/state; on macOS and Windows the user
// config dir); for any other config path (NCAGENT_CONFIG, run --config),
// ncagent-state.toml beside it, so that two configs never share a state.
func StatePathFor(configPath string) (string, error) {
	if p := os.Getenv("NCAGENT_STATE"); p != "" {
		return p, nil
	}
	def, err := defaultConfigPath()
	if err != nil || filepath.Clean(configPath) != filepath.Clean(def) {
		return filepath.Join(filepath.Dir(configPath), "ncagent-state.toml"), nil
	}
	dir, err := userStateDir()
	if err != nil {
		return "", fmt.Errorf("config: locate the state dir: %w (set NCAGENT_STATE)", err)
	}
	return filepath.Join(dir, "ncagent", "accounts.toml"), nil
}

// defaultConfigPath is ConfigPath without $NCAGENT_CONFIG.
func defaultConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ncagent", "config.toml"), nil
}

// userStateDir is $XDG_STATE_HOME or ~/.local/state (XDG Base Directory
// Specification) on Linux and the BSDs; the user config dir elsewhere.
func userStateDir() (string, error) {
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		return os.UserConfigDir()
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state"), nil
}

// Origin says where an account's settings come from.
type Origin string

const (
	OriginState  Origin = "state"  // added by sign-in, kept in the state file
	OriginConfig Origin = "config" // written by the user in config.toml
	OriginBoth   Origin = "both"   // in both; config.toml's values win
)

// Files is the merged view of config.toml and the state file.
type Files struct {
	ConfigPath string
	StatePath  string
	Config     *Config // merged and validated
	User       *Config // config.toml alone, not validated
	State      *Config // the state file alone, not validated
}

// Origin returns where account name is defined ("" when it is not).
func (f *Files) Origin(name string) Origin {
	_, inUser := f.User.Accounts[name]
	_, inState := f.State.Accounts[name]
	switch {
	case inUser && inState:
		return OriginBoth
	case inUser:
		return OriginConfig
	case inState:
		return OriginState
	}
	return ""
}

// LoadFiles reads config.toml and the state file, merges them (the user's
// values win) and validates the result. Either file may be missing.
// Warnings name the file.
func LoadFiles(configPath, statePath string) (*Files, []string, error) {
	user, uw, err := readConfigFile(configPath)
	if err != nil {
		return nil, nil, err
	}
	state, sw, err := readConfigFile(statePath)
	if err != nil {
		return nil, nil, err
	}
	var warnings []string
	for _, w := range uw {
		warnings = append(warnings, configPath+": "+w)
	}
	for _, w := range sw {
		warnings = append(warnings, statePath+": "+w)
	}
	merged := mergeConfigs(state, user)
	if err := merged.Validate(); err != nil {
		return nil, nil, fmt.Errorf("config: %s (with %s): %w", configPath, statePath, err)
	}
	return &Files{ConfigPath: configPath, StatePath: statePath, Config: merged, User: user, State: state}, warnings, nil
}

// readConfigFile reads and decodes one file without validating it.
func readConfigFile(path string) (*Config, []string, error) {
	data, err := readBounded(path, maxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Accounts: map[string]*AccountConfig{}}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("config: read: %w", err)
	}
	cfg, warnings, err := decodeConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, warnings, nil
}

// mergeConfigs returns base overlaid with over: every field over sets
// (non-zero) wins. Neither argument is modified.
func mergeConfigs(base, over *Config) *Config {
	out := &Config{Agent: base.Agent, Accounts: map[string]*AccountConfig{}}
	overlay(reflect.ValueOf(&out.Agent).Elem(), reflect.ValueOf(over.Agent))
	for name, ac := range base.Accounts {
		c := ac.clone()
		out.Accounts[name] = c
	}
	for name, ac := range over.Accounts {
		c, ok := out.Accounts[name]
		if !ok {
			out.Accounts[name] = ac.clone()
			continue
		}
		overlay(reflect.ValueOf(c).Elem(), reflect.ValueOf(*ac))
	}
	return out
}

// overlay copies every non-zero field of src into dst, descending into
// nested structs (the endpoints table), so that a user who sets one
// endpoint keeps the others.
func overlay(dst, src reflect.Value) {
	for i := range src.NumField() {
		sf, df := src.Field(i), dst.Field(i)
		if sf.Kind() == reflect.Struct {
			overlay(df, sf)
			continue
		}
		if !sf.IsZero() {
			df.Set(sf)
		}
	}
}

func (ac *AccountConfig) clone() *AccountConfig {
	c := *ac
	c.Scopes = slices.Clone(ac.Scopes)
	c.AcceptedAudiences = slices.Clone(ac.AcceptedAudiences)
	c.AllowedAlgs = slices.Clone(ac.AllowedAlgs)
	c.ExchangeParams = maps.Clone(ac.ExchangeParams)
	return &c
}

// managed returns the part of an account that sign-in records in the
// state file: what it was told or learned, nothing the user tunes by hand.
func (ac *AccountConfig) managed() *AccountConfig {
	return &AccountConfig{
		Kind:        ac.Kind,
		Server:      ac.Server,
		Issuer:      ac.Issuer,
		ClientID:    ac.ClientID,
		ClientAuth:  ac.ClientAuth,
		User:        ac.User,
		DisplayName: ac.DisplayName,
		CAFile:      ac.CAFile,
		Scopes:      slices.Clone(ac.Scopes),
		// ncagent login --redirect-host, kept for the next sign-in.
		RedirectHost: ac.RedirectHost,
	}
}

// UpdateState changes the state file at path: under an exclusive lock
// (shared by the agent and the account verbs, so that neither loses the
// other's write) it reads the file, calls change on it and, when change
// returns nil, writes it back atomically. The state file alone is not
// validated: its default account may be defined in config.toml.
func UpdateState(path string, change func(st *Config) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("state: lock %s: %w", path, err)
	}
	defer unlock()
	st, _, err := readConfigFile(path)
	if err != nil {
		return err
	}
	if err := change(st); err != nil {
		return err
	}
	st.normalize()
	data, err := st.encodeWith(stateHeader)
	if err != nil {
		return fmt.Errorf("state: encode: %w", err)
	}
	if err := writeAtomic(path, false, writeBytes(data)); err != nil {
		return fmt.Errorf("state: save %s: %w", path, err)
	}
	return nil
}

// LoadMerged returns the merged config of config.toml at configPath and
// its state file (StatePathFor).
func LoadMerged(configPath string) (*Config, []string, error) {
	statePath, err := StatePathFor(configPath)
	if err != nil {
		return nil, nil, err
	}
	f, warnings, err := LoadFiles(configPath, statePath)
	if err != nil {
		return nil, nil, err
	}
	return f.Config, warnings, nil
}
