package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
)

func fullConfig() *Config {
	return &Config{
		Agent: AgentConfig{DefaultAccount: "work", LogLevel: "debug"},
		Accounts: map[string]*AccountConfig{
			"work": {
				Kind:                    "oidc",
				Server:                  "https://cloud.example.com",
				Issuer:                  "https://sso.example.com/realms/main",
				ClientID:                "ncagent",
				ClientAuth:              "client_secret_basic",
				Scopes:                  []string{"openid", "offline_access", "files:read"},
				Audience:                "nextcloud",
				User:                    "alice",
				DisplayName:             "Alice \"Example\" ✓",
				KeepAlive:               "10m",
				EarlyRefresh:            "45s",
				AcceptedAudiences:       []string{"mcp-server", "ncagent"},
				AllowedAlgs:             []string{"RS256", "ES256", "EdDSA"},
				CacheExchanged:          true,
				ExchangeFallbackRefresh: true,
				RedirectHost:            "127.0.0.1",
				Endpoints: broker.Endpoints{
					Authorization:       "https://sso.example.com/auth",
					Token:               "https://sso.example.com/token",
					Revocation:          "https://sso.example.com/revoke",
					JWKS:                "https://sso.example.com/certs",
					DeviceAuthorization: "https://sso.example.com/device",
					Userinfo:            "https://sso.example.com/userinfo",
				},
			},
			"home": {Kind: "app-password", Server: "https://nc.home.example", User: "bob"},
		},
	}
}

func TestConfigSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "ncagent")
	path := filepath.Join(dir, "config.toml")
	want := fullConfig()
	if err := want.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, warnings, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: got %q, want none", warnings)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
	}
	if runtime.GOOS != "windows" {
		checkMode(t, path, 0o600)
		checkMode(t, dir, 0o700)
	}

	// Save over the existing file; no temporary file is left behind.
	got.Accounts["extra"] = &AccountConfig{Kind: "app-password", Server: "https://x.example"}
	if err := got.Save(path); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	again, _, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("LoadConfig after second Save: %v", err)
	}
	if names := again.AccountNames(); !slices.Equal(names, []string{"extra", "home", "work"}) {
		t.Errorf("accounts: got %q, want %q", names, []string{"extra", "home", "work"})
	}
	checkDirEntries(t, dir, []string{"config.toml"})
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s: got %v, want %v", filepath.Base(path), got, want)
	}
}

func checkDirEntries(t *testing.T, dir string, want []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries of %s: got %q, want %q", dir, got, want)
	}
}

func TestConfigSaveFailureLeavesNoPartialFile(t *testing.T) {
	t.Run("rename fails", func(t *testing.T) {
		// The target is a non-empty directory: writing the temporary file
		// works, the rename cannot.
		dir := t.TempDir()
		path := filepath.Join(dir, "config.toml")
		if err := os.MkdirAll(filepath.Join(path, "keep"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := fullConfig().Save(path); err == nil {
			t.Fatal("Save over a directory: got nil error")
		}
		checkDirEntries(t, dir, []string{"config.toml"})
		checkDirEntries(t, path, []string{"keep"})
	})
	t.Run("unwritable dir", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("needs a non-root unix user: root writes to read-only dirs")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "config.toml")
		old := []byte("# old\n")
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		if err := fullConfig().Save(path); err == nil {
			t.Fatal("Save into a read-only dir: got nil error")
		}
		if got, _ := os.ReadFile(path); string(got) != string(old) {
			t.Errorf("config: got %q, want %q (unchanged)", got, old)
		}
		checkDirEntries(t, dir, []string{"config.toml"})
	})
	t.Run("invalid config", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.toml")
		c := &Config{Accounts: map[string]*AccountConfig{"work": {Kind: "bogus"}}}
		if err := c.Save(path); err == nil || !strings.Contains(err.Error(), "kind") {
			t.Fatalf("Save of an invalid config: got %v, want an error naming kind", err)
		}
		checkDirEntries(t, dir, nil)
	})
}

func TestLoadConfigMissingFile(t *testing.T) {
	cfg, warnings, err := LoadConfig(filepath.Join(t.TempDir(), "nope", "config.toml"))
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if len(cfg.Accounts) != 0 || cfg.Accounts == nil || len(warnings) != 0 {
		t.Errorf("got %+v, %q; want an empty config without warnings", cfg, warnings)
	}
}

func TestConfigPath(t *testing.T) {
	t.Setenv("NCAGENT_CONFIG", "/some/where/ncagent.toml")
	if got, err := ConfigPath(); err != nil || got != "/some/where/ncagent.toml" {
		t.Errorf("with NCAGENT_CONFIG: got (%q, %v), want %q", got, err, "/some/where/ncagent.toml")
	}
	t.Setenv("NCAGENT_CONFIG", "")
	base, err := os.UserConfigDir()
	if err != nil {
		t.Skip("no user config dir:", err)
	}
	want := filepath.Join(base, "ncagent", "config.toml")
	if got, err := ConfigPath(); err != nil || got != want {
		t.Errorf("default: got (%q, %v), want %q", got, err, want)
	}
}

// TestConfigTestdata loads every file in testdata/config: bad-*.toml must
// fail, the others must load.
func TestConfigTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, _, err := LoadConfig(f)
			bad := strings.HasPrefix(filepath.Base(f), "bad-")
			if bad && err == nil {
				t.Error("got nil error, want one")
			}
			if !bad && err != nil {
				t.Errorf("got %v, want nil", err)
			}
		})
	}
	cfg, _, err := LoadConfig(filepath.Join("testdata", "config", "full.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := fullConfig()
	want.Accounts["work"].DisplayName = "Alice Example"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("full.toml:\ngot  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigSyntaxErrorNamesLine(t *testing.T) {
	_, _, err := LoadConfig(filepath.Join("testdata", "config", "bad-syntax.toml"))
	if err == nil {
		t.Fatal("got nil error")
	}
	for _, want := range []string{"bad-syntax.toml", "line 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
}

func TestLoadConfigUnknownKeys(t *testing.T) {
	cfg, warnings, err := LoadConfig(filepath.Join("testdata", "config", "unknown-keys.toml"))
	if err != nil {
		t.Fatalf("got %v, want unknown keys to be warnings", err)
	}
	want := []string{
		`unknown key "colour" ignored`,
		`unknown key "agent.socket" ignored`,
		`unknown key "accounts.work.servr" ignored`,
		`unknown key "accounts.work.endpoints.tokn" ignored`,
	}
	slices.Sort(warnings)
	slices.Sort(want)
	if !slices.Equal(warnings, want) {
		t.Errorf("warnings: got %q, want %q", warnings, want)
	}
	if cfg.Accounts["work"].Server != "https://cloud.example.com" || cfg.Agent.LogLevel != "info" {
		t.Errorf("known keys not loaded: got %+v", cfg)
	}
}

// fakeSecretValue stands in for a secret someone pasted into the config.
const fakeSecretValue = "s3cr3t-VALUE-9d1c"

func TestLoadConfigRefusesSecrets(t *testing.T) {
	tests := []struct {
		name, text, key string
	}{
		{"refresh_token", "[accounts.work]\nkind = \"oidc\"\nrefresh_token = \"" + fakeSecretValue + "\"\n", "refresh_token"},
		{"access_token", "[accounts.work]\naccess_token = '" + fakeSecretValue + "'\n", "access_token"},
		{"app_password", "[accounts.home]\nkind = \"app-password\"\nserver = \"https://x.example\"\napp_password = \"" + fakeSecretValue + "\"\n", "app_password"},
		{"password", "[accounts.home]\n  password=\"" + fakeSecretValue + "\"\n", "password"},
		{"client_secret", "[accounts.work]\nclient_secret = \"" + fakeSecretValue + "\"\n", "client_secret"},
		{"dashed", "[accounts.work]\nclient-secret = \"" + fakeSecretValue + "\"\n", "client-secret"},
		{"upper case", "[accounts.work]\nPassword = \"" + fakeSecretValue + "\"\n", "Password"},
		{"top level", "password = \"" + fakeSecretValue + "\"\n", "password"},
		{"in agent", "[agent]\nnc_password = \"" + fakeSecretValue + "\"\n", "nc_password"},
		{"dotted key", "accounts.work.refresh_token = \"" + fakeSecretValue + "\"\n", "accounts.work.refresh_token"},
		{"inline table", "[accounts]\nwork = { kind = \"oidc\", refresh_token = \"" + fakeSecretValue + "\" }\n", "refresh_token"},
		{"unquoted value (syntax error)", "[accounts.work]\nrefresh_token = " + fakeSecretValue + "\n", "refresh_token"},
		{"multi-line value", "[accounts.work]\nrefresh_token = \"\"\"\n" + fakeSecretValue + "\n\"\"\"\n", "refresh_token"},
		{"table", "[accounts.work.client_secret]\nvalue = \"" + fakeSecretValue + "\"\n", "client_secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadConfig(path)
			if err == nil {
				t.Fatal("got nil error, want the secret refused")
			}
			msg := err.Error()
			if strings.Contains(msg, fakeSecretValue) {
				t.Fatal("the error echoes the secret value")
			}
			for _, want := range []string{tt.key, "keychain", "remove", "sign in again"} {
				if !strings.Contains(msg, want) {
					t.Errorf("got %q, want it to contain %q", msg, want)
				}
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	valid := func() *AccountConfig {
		return &AccountConfig{Kind: "oidc", Server: "https://cloud.example.com", ClientID: "ncagent"}
	}
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // substrings of the error
	}{
		{"name with space", func(c *Config) { c.Accounts["my work"] = valid() }, []string{`"my work"`, "account name"}},
		{"name with #", func(c *Config) { c.Accounts["a#b"] = valid() }, []string{`"a#b"`, "account name"}},
		{"name starting with dash", func(c *Config) { c.Accounts["-x"] = valid() }, []string{`"-x"`, "account name"}},
		{"name too long", func(c *Config) { c.Accounts[strings.Repeat("a", 65)] = valid() }, []string{"account name"}},
		{"empty name", func(c *Config) { c.Accounts[""] = valid() }, []string{"account name"}},
		{"missing kind", func(c *Config) { c.Accounts["w"].Kind = "" }, []string{`account "w"`, "kind", "oidc or app-password"}},
		{"bad kind", func(c *Config) { c.Accounts["w"].Kind = "saml" }, []string{`account "w"`, "kind", `"saml"`}},
		{"oidc without client id", func(c *Config) { c.Accounts["w"].ClientID = "" }, []string{`account "w"`, "client_id"}},
		{"oidc without issuer or server", func(c *Config) { c.Accounts["w"].Server = "" }, []string{`account "w"`, "issuer"}},
		{"app-password without server", func(c *Config) { c.Accounts["w"] = &AccountConfig{Kind: "app-password"} }, []string{`account "w"`, "server"}},
		{"http server", func(c *Config) { c.Accounts["w"].Server = "http://cloud.example.com" }, []string{`account "w"`, "server", "https", "localhost"}},
		{"relative server", func(c *Config) { c.Accounts["w"].Server = "cloud.example.com" }, []string{`account "w"`, "server", "absolute"}},
		{"ftp issuer", func(c *Config) { c.Accounts["w"].Issuer = "ftp://sso.example.com" }, []string{`account "w"`, "issuer", "https"}},
		{"credentials in url", func(c *Config) { c.Accounts["w"].Server = "https://u:" + fakeSecretValue + "@cloud.example.com" }, []string{`account "w"`, "server", "credentials"}},
		{"http on a lookalike host", func(c *Config) { c.Accounts["w"].Issuer = "http://localhost.evil.example" }, []string{"issuer", "https"}},
		{"bad token endpoint", func(c *Config) { c.Accounts["w"].Endpoints.Token = "/token" }, []string{`account "w"`, "endpoints.token"}},
		{"bad jwks endpoint", func(c *Config) { c.Accounts["w"].Endpoints.JWKS = "http://idp.example/jwks" }, []string{"endpoints.jwks"}},
		{"bad client_auth", func(c *Config) { c.Accounts["w"].ClientAuth = "private_key_jwt" }, []string{`account "w"`, "client_auth"}},
		{"bad keepalive", func(c *Config) { c.Accounts["w"].KeepAlive = "10 minutes" }, []string{`account "w"`, "keepalive"}},
		{"tiny keepalive", func(c *Config) { c.Accounts["w"].KeepAlive = "1ms" }, []string{`account "w"`, "keepalive"}},
		{"bad early_refresh", func(c *Config) { c.Accounts["w"].EarlyRefresh = "soon" }, []string{`account "w"`, "early_refresh"}},
		{"negative early_refresh", func(c *Config) { c.Accounts["w"].EarlyRefresh = "-5s" }, []string{"early_refresh", "negative"}},
		{"bad scope", func(c *Config) { c.Accounts["w"].Scopes = []string{"openid", "two words"} }, []string{`account "w"`, "scopes", `"two words"`}},
		{"empty scope", func(c *Config) { c.Accounts["w"].Scopes = []string{""} }, []string{"scopes"}},
		{"alg none", func(c *Config) { c.Accounts["w"].AllowedAlgs = []string{"none"} }, []string{`account "w"`, "allowed_algs", `"none"`}},
		{"alg hmac", func(c *Config) { c.Accounts["w"].AllowedAlgs = []string{"HS256"} }, []string{"allowed_algs", `"HS256"`}},
		{"empty audience", func(c *Config) { c.Accounts["w"].AcceptedAudiences = []string{""} }, []string{"accepted_audiences"}},
		{"bad redirect_host", func(c *Config) { c.Accounts["w"].RedirectHost = "0.0.0.0" }, []string{`account "w"`, "redirect_host"}},
		{"relative ca_file", func(c *Config) { c.Accounts["w"].CAFile = "ca.pem" }, []string{`account "w"`, "ca_file", "absolute"}},
		{"bad log_level", func(c *Config) { c.Agent.LogLevel = "loud" }, []string{"log_level", `"loud"`}},
		{"bad store", func(c *Config) { c.Agent.Store = "vault" }, []string{"store", `"vault"`, "keychain", "file"}},
		{"relative identity_file", func(c *Config) { c.Agent.IdentityFile = "key.txt" }, []string{"identity_file", "absolute"}},
		{"unknown default_account", func(c *Config) { c.Agent.DefaultAccount = "nope" }, []string{"default_account", `"nope"`, "w"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Accounts: map[string]*AccountConfig{"w": valid()}}
			if err := c.Validate(); err != nil {
				t.Fatalf("base config: %v", err)
			}
			tt.modify(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("got nil error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), fakeSecretValue) {
				t.Error("the error echoes a secret")
			}
		})
	}
}

func TestValidateAccountName(t *testing.T) {
	for _, name := range []string{"work", "W0rk", "a", "nc.example-1_a", "1st", strings.Repeat("a", 64)} {
		if err := ValidateAccountName(name); err != nil {
			t.Errorf("%q: got %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".hidden", "_x", "-x", "a b", "a/b", "a#b", "ä", strings.Repeat("a", 65), "a\n"} {
		if err := ValidateAccountName(name); err == nil {
			t.Errorf("%q: got nil, want an error", name)
		}
	}
}

func TestConfigDefaultAccount(t *testing.T) {
	acct := &AccountConfig{Kind: "app-password", Server: "https://x.example"}
	tests := []struct {
		name     string
		cfg      Config
		want     string
		wantErrs []string
	}{
		{"configured", Config{Agent: AgentConfig{DefaultAccount: "b"}, Accounts: map[string]*AccountConfig{"a": acct, "b": acct}}, "b", nil},
		{"only account", Config{Accounts: map[string]*AccountConfig{"solo": acct}}, "solo", nil},
		{"none", Config{}, "", []string{"no account", "ncagent login"}},
		{"several", Config{Accounts: map[string]*AccountConfig{"b": acct, "a": acct}}, "", []string{"a, b", "default_account"}},
		{"configured but missing", Config{Agent: AgentConfig{DefaultAccount: "c"}, Accounts: map[string]*AccountConfig{"a": acct}}, "", []string{`"c"`, "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.DefaultAccount()
			if tt.wantErrs == nil {
				if err != nil || got != tt.want {
					t.Fatalf("got (%q, %v), want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// writeTestCA writes a self-signed CA certificate in PEM to dir.
func writeTestCA(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ncagent test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestAccountConfigBroker(t *testing.T) {
	dir := t.TempDir()
	caPath, caPEM := writeTestCA(t, dir)
	ac := fullConfig().Accounts["work"]
	ac.CAFile = caPath
	got, err := ac.Broker("work")
	if err != nil {
		t.Fatalf("Broker: %v", err)
	}
	want := broker.Account{
		Name:                    "work",
		Kind:                    broker.KindOIDC,
		Server:                  "https://cloud.example.com",
		Username:                "alice",
		Issuer:                  "https://sso.example.com/realms/main",
		ClientID:                "ncagent",
		ClientAuth:              broker.ClientAuthBasic,
		Scopes:                  []string{"openid", "offline_access", "files:read"},
		Audience:                "nextcloud",
		Endpoints:               ac.Endpoints,
		CAPEM:                   caPEM,
		EarlyRefresh:            45 * time.Second,
		KeepAlive:               10 * time.Minute,
		AcceptedAudiences:       []string{"mcp-server", "ncagent"},
		AllowedAlgs:             []string{"RS256", "ES256", "EdDSA"},
		CacheExchanged:          true,
		ExchangeFallbackRefresh: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got.ClientSecret != "" {
		t.Error("ClientSecret set from config, want it left to the caller")
	}
	// The result does not alias the config's slices.
	got.Scopes[0] = "changed"
	if ac.Scopes[0] != "openid" {
		t.Error("Broker result aliases AccountConfig.Scopes")
	}

	t.Run("defaults", func(t *testing.T) {
		tests := []struct {
			name          string
			ac            AccountConfig
			wantIssuer    string
			wantKeepAlive time.Duration
		}{
			{"issuer defaults to server", AccountConfig{Kind: "oidc", Server: "https://c.example", ClientID: "x"}, "https://c.example", 0},
			{"keepalive off", AccountConfig{Kind: "oidc", Issuer: "https://i.example", ClientID: "x", KeepAlive: "off"}, "https://i.example", -1},
			{"keepalive negative", AccountConfig{Kind: "oidc", Issuer: "https://i.example", ClientID: "x", KeepAlive: "-1s"}, "https://i.example", -1},
			{"app password has no issuer", AccountConfig{Kind: "app-password", Server: "https://c.example"}, "", 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, err := tt.ac.Broker("x")
				if err != nil {
					t.Fatal(err)
				}
				if a.Issuer != tt.wantIssuer || a.KeepAlive != tt.wantKeepAlive {
					t.Errorf("got issuer %q keepalive %v, want %q %v", a.Issuer, a.KeepAlive, tt.wantIssuer, tt.wantKeepAlive)
				}
			})
		}
	})

	t.Run("bad ca_file", func(t *testing.T) {
		notPEM := filepath.Join(dir, "not.pem")
		if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
			ac := AccountConfig{Kind: "app-password", Server: "https://c.example", CAFile: path}
			_, err := ac.Broker("home")
			if err == nil || !strings.Contains(err.Error(), `account "home": ca_file`) {
				t.Errorf("%s: got %v, want an error naming account and ca_file", filepath.Base(path), err)
			}
		}
	})

	t.Run("invalid account", func(t *testing.T) {
		ac := AccountConfig{Kind: "oidc", Server: "https://c.example"}
		if _, err := ac.Broker("w"); err == nil || !strings.Contains(err.Error(), "client_id") {
			t.Errorf("got %v, want an error naming client_id", err)
		}
	})
}

// FuzzParseConfig checks that parsing any input never panics, never
// echoes a secret-looking key's value, and that a valid config re-encodes
// into text that parses back equal.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.toml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[accounts.w]\nrefresh_token = \"x\"\n"))
	f.Add([]byte("[accounts]\nw = { kind = \"app-password\", server = \"https://a.example\" }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := parseConfig(data)
		if err != nil {
			return
		}
		text, err := cfg.encode()
		if err != nil {
			t.Fatalf("encode of a valid config: %v", err)
		}
		again, warnings, err := parseConfig(text)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, text)
		}
		if len(warnings) != 0 {
			t.Errorf("re-parse warnings: %q", warnings)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("re-parse differs:\ngot  %+v\nwant %+v\n%s", again, cfg, text)
		}
	})
}
