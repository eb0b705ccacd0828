package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/ncagent/ncagent/broker"
)

// Config is the agent's configuration file: non-secret account data only.
// Secrets (refresh tokens, app passwords, client secrets) live in the
// keychain; LoadConfig refuses a file that holds one.
//
//	[agent]
//	default_account = "work"
//
//	[accounts.work]
//	kind      = "oidc"
//	server    = "https://cloud.example.com"
//	issuer    = "https://cloud.example.com"
//	client_id = "ncagent"
//	scopes    = ["openid", "offline_access"]
type Config struct {
	Agent    AgentConfig               `toml:"agent"`
	Accounts map[string]*AccountConfig `toml:"accounts"`
}

// AgentConfig is the [agent] table.
type AgentConfig struct {
	// DefaultAccount answers requests that name no account. Empty: the
	// only account, if there is exactly one.
	DefaultAccount string `toml:"default_account,omitempty"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `toml:"log_level,omitempty"`
	// Store is where secrets are kept: "keychain", "file" (the age file
	// store, see FileStore) or empty: the keychain, or the file store where
	// no keychain can be reached and you chose it (ncagent unlock).
	Store string `toml:"store,omitempty"`
	// IdentityFile (absolute or ~/...) is an age identity file the file
	// store is encrypted to, instead of a passphrase.
	IdentityFile string `toml:"identity_file,omitempty"`
}

// AccountConfig is one [accounts.NAME] table. Durations are strings in Go
// syntax ("10m", "30s"); Broker parses them.
type AccountConfig struct {
	Kind        string `toml:"kind"`                   // "oidc" or "app-password"
	Server      string `toml:"server,omitempty"`       // Nextcloud base URL
	Issuer      string `toml:"issuer,omitempty"`       // OIDC issuer; default: server
	ClientID    string `toml:"client_id,omitempty"`    // OIDC client id (required for oidc)
	ClientAuth  string `toml:"client_auth,omitempty"`  // none, client_secret_post, client_secret_basic
	Audience    string `toml:"audience,omitempty"`     // default audience of tokens
	User        string `toml:"user,omitempty"`         // login name, filled in by sign-in
	DisplayName string `toml:"display_name,omitempty"` // for status displays
	// CAFile is an absolute path (or ~/...) to an extra PEM CA bundle.
	CAFile string   `toml:"ca_file,omitempty"`
	Scopes []string `toml:"scopes,omitempty"`
	// KeepAlive is the keep-alive refresh interval when the IdP sends no
	// refresh_expires_in ("10m"); "off" or a negative duration disables it.
	KeepAlive string `toml:"keepalive,omitempty"`
	// EarlyRefresh: cached tokens are refreshed this long before expiry ("30s").
	EarlyRefresh            string   `toml:"early_refresh,omitempty"`
	AcceptedAudiences       []string `toml:"accepted_audiences,omitempty"`
	AllowedAlgs             []string `toml:"allowed_algs,omitempty"`
	CacheExchanged          bool     `toml:"cache_exchanged,omitempty"`
	ExchangeFallbackRefresh bool     `toml:"exchange_fallback_refresh,omitempty"`
	// RedirectHost is the loopback host of the browser sign-in redirect:
	// "localhost" or "127.0.0.1"; default localhost on the Nextcloud oidc
	// app, 127.0.0.1 elsewhere (RFC 8252 §8.3).
	RedirectHost string           `toml:"redirect_host,omitempty"`
	Endpoints    broker.Endpoints `toml:"endpoints,omitempty"`
	// TokensPerGrant is "one" for providers that keep one access token
	// per grant and kill it on every refresh (automatic for the Nextcloud
	// oidc app), "many" to keep one per scope set; default automatic.
	TokensPerGrant string `toml:"tokens_per_grant,omitempty"`
	// ExchangeParams are extra form fields of RFC 8693 token exchange
	// requests (Dex: connector_id).
	ExchangeParams map[string]string `toml:"exchange_params,omitempty"`
}

// ConfigPath returns the path of the config file: $NCAGENT_CONFIG when set,
// else config.toml in the ncagent directory of the user config dir
// (e.g. ~/.config/ncagent/config.toml).
func ConfigPath() (string, error) {
	if p := os.Getenv("NCAGENT_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config: locate the config dir: %w (set NCAGENT_CONFIG)", err)
	}
	return filepath.Join(dir, "ncagent", "config.toml"), nil
}

// maxConfigSize bounds the config file LoadConfig reads.
const maxConfigSize = 1 << 20

// LoadConfig reads and validates the config file at path. A missing file is
// an empty config. Unknown keys are not fatal: they come back as warnings,
// one line each, naming the key. A key that looks like a secret
// (refresh_token, password, client_secret, ...) is refused: secrets belong
// in the keychain. Errors name the file and, for syntax errors, the line;
// they never contain a value of the file.
func LoadConfig(path string) (cfg *Config, warnings []string, err error) {
	data, err := readBounded(path, maxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Accounts: map[string]*AccountConfig{}}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("config: read: %w", err)
	}
	cfg, warnings, err = parseConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, warnings, nil
}

// parseConfig parses and validates a config file's contents.
func parseConfig(data []byte) (*Config, []string, error) {
	cfg, warnings, err := decodeConfig(data)
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	return cfg, warnings, nil
}

// decodeConfig parses a config file's contents without validating them: a
// config.toml may hold only the overrides of an account whose other fields
// are in the state file.
func decodeConfig(data []byte) (*Config, []string, error) {
	if err := scanSecretKeys(data); err != nil {
		return nil, nil, err
	}
	var cfg Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, nil, err
	}
	var warnings []string
	for _, key := range md.Undecoded() {
		if secretKey(key[len(key)-1]) {
			return nil, nil, secretKeyError(key.String(), 0)
		}
		warnings = append(warnings, fmt.Sprintf("unknown key %q ignored", key.String()))
	}
	cfg.normalize()
	return &cfg, warnings, nil
}

// normalize makes empty collections nil and the account map non-nil, so
// that a config compares equal to itself re-encoded.
func (c *Config) normalize() {
	if c.Accounts == nil {
		c.Accounts = map[string]*AccountConfig{}
	}
	for name, ac := range c.Accounts {
		if ac == nil {
			ac = &AccountConfig{}
			c.Accounts[name] = ac
		}
		for _, s := range []*[]string{&ac.Scopes, &ac.AcceptedAudiences, &ac.AllowedAlgs} {
			if len(*s) == 0 {
				*s = nil
			}
		}
	}
}

// secretKeyNames are keys a config must never have. ("token" alone is not
// one: it is the token endpoint in [accounts.NAME.endpoints].)
var secretKeyNames = []string{
	"refresh_token", "access_token", "id_token", "app_password",
	"apppassword", "password", "passwd", "secret", "client_secret",
}

// secretKey reports whether a config key is named like a secret.
func secretKey(key string) bool {
	k := strings.ToLower(strings.ReplaceAll(key, "-", "_"))
	if slices.Contains(secretKeyNames, k) {
		return true
	}
	for _, suffix := range []string{"_token", "_password", "_secret"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

func secretKeyError(key string, line int) error {
	where := ""
	if line > 0 {
		where = fmt.Sprintf("line %d: ", line)
	}
	return fmt.Errorf("%skey %q looks like a secret, and secrets are kept only in the keychain: remove the line, then sign in again (ncagent login ACCOUNT) if the secret is needed", where, key)
}

// keyAssignment matches the key of "key = ..." at the start of a line or
// after "{" or "," (inline tables), with optional quotes and dotted parts.
var keyAssignment = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:^|[{,])\s*((?:["']?[A-Za-z0-9_-]+["']?\s*\.\s*)*["']?([A-Za-z0-9_-]+)["']?)\s*=`)
})

// scanSecretKeys refuses secret-looking keys before parsing, so that a file
// that holds a secret is refused even when it has a syntax error whose
// message could quote the value.
func scanSecretKeys(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxConfigSize+1)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 && !strings.ContainsAny(text[:i], `"'`) {
			text = text[:i]
		}
		for _, m := range keyAssignment().FindAllStringSubmatch(text, -1) {
			if secretKey(m[2]) {
				return secretKeyError(strings.Join(strings.Fields(m[1]), ""), line)
			}
		}
	}
	return nil
}

// Validate checks the whole config; the error names the account and the
// field at fault.
func (c *Config) Validate() error {
	switch c.Agent.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("[agent] log_level %q: want debug, info, warn or error", c.Agent.LogLevel)
	}
	switch c.Agent.Store {
	case StoreAuto, StoreKeychain, StoreFile:
	default:
		return fmt.Errorf("[agent] store %q: want \"keychain\", \"file\" or leave it out", c.Agent.Store)
	}
	if _, err := expandHome(c.Agent.IdentityFile); err != nil {
		return fmt.Errorf("[agent] identity_file: %w", err)
	}
	for _, name := range c.AccountNames() {
		if err := ValidateAccountName(name); err != nil {
			return fmt.Errorf("account %q: %w", name, err)
		}
		ac := c.Accounts[name]
		if ac == nil {
			return fmt.Errorf("account %q: empty", name)
		}
		if err := ac.Validate(name); err != nil {
			return err
		}
	}
	if d := c.Agent.DefaultAccount; d != "" {
		if _, ok := c.Accounts[d]; !ok {
			return fmt.Errorf("[agent] default_account %q: no such account (have: %s)", d, c.accountList())
		}
	}
	return nil
}

// AccountNames returns the names of the configured accounts, sorted.
func (c *Config) AccountNames() []string {
	names := make([]string, 0, len(c.Accounts))
	for name := range c.Accounts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (c *Config) accountList() string {
	if len(c.Accounts) == 0 {
		return "none"
	}
	return strings.Join(c.AccountNames(), ", ")
}

// DefaultAccount returns the account to use when a request names none: the
// configured default_account, else the only account. With several accounts
// and no default, or none at all, the error says what to do.
func (c *Config) DefaultAccount() (string, error) {
	if d := c.Agent.DefaultAccount; d != "" {
		if _, ok := c.Accounts[d]; !ok {
			return "", fmt.Errorf("default account %q is not configured (have: %s)", d, c.accountList())
		}
		return d, nil
	}
	switch len(c.Accounts) {
	case 0:
		return "", errors.New("no account configured: run ncagent login NAME --server URL")
	case 1:
		return c.AccountNames()[0], nil
	}
	return "", fmt.Errorf("several accounts and no default: name one of %s, or run ncagent default NAME (or set default_account in [agent] of config.toml)", c.accountList())
}

// Save writes the config to path atomically: a temporary file (mode 0600)
// in the same directory is written, synced and renamed over path. The
// directory is created with mode 0700 when missing. Save refuses an invalid
// config. Comments of an existing file are not kept.
func (c *Config) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: save %s: %w", path, err)
	}
	data, err := c.encode()
	if err != nil {
		return fmt.Errorf("config: save %s: %w", path, err)
	}
	if err := writeAtomic(path, false, writeBytes(data)); err != nil {
		return fmt.Errorf("config: save: %w", err)
	}
	return nil
}

const configHeader = "# ncagent configuration. Secrets are never kept here: they live in the\n# OS keychain. See ncagent help config.\n\n"

// encode returns the TOML text of c.
func (c *Config) encode() ([]byte, error) {
	return c.encodeWith(configHeader)
}

// encodeWith returns the TOML text of c after header.
func (c *Config) encodeWith(header string) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
