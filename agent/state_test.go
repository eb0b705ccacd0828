//go:build unix

package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFilesUserValuesWin(t *testing.T) {
	dir := t.TempDir()
	cfgPath, statePath := filepath.Join(dir, "config.toml"), filepath.Join(dir, "state.toml")
	writeFile(t, statePath, `[agent]
default_account = "work"
[accounts.work]
kind = "oidc"
server = "https://cloud.example.com"
client_id = "ncagent"
scopes = ["openid", "offline_access"]
[accounts.work.endpoints]
token = "https://cloud.example.com/token"
[accounts.home]
kind = "app-password"
server = "https://nc.home.example"
user = "bob"
`)
	// The user overrides the default, one account's scopes and one
	// endpoint, and tunes a field sign-in never writes.
	writeFile(t, cfgPath, `# mine
[agent]
default_account = "home"
[accounts.work]
scopes = ["openid", "files"]
keepalive = "5m"
[accounts.work.endpoints]
revocation = "https://cloud.example.com/revoke"
`)
	f, warnings, err := LoadFiles(cfgPath, statePath)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("LoadFiles: %v %q", err, warnings)
	}
	c := f.Config
	if c.Agent.DefaultAccount != "home" {
		t.Errorf("default: got %q, want the user's %q", c.Agent.DefaultAccount, "home")
	}
	w := c.Accounts["work"]
	if !slices.Equal(w.Scopes, []string{"openid", "files"}) || w.KeepAlive != "5m" || w.Server != "https://cloud.example.com" || w.ClientID != "ncagent" {
		t.Errorf("work: got %+v, want the state's fields with the user's scopes and keepalive", w)
	}
	if w.Endpoints.Token != "https://cloud.example.com/token" || w.Endpoints.Revocation != "https://cloud.example.com/revoke" {
		t.Errorf("work endpoints: got %+v, want both the state's and the user's", w.Endpoints)
	}
	if got := f.Origin("work"); got != OriginBoth {
		t.Errorf("origin work: got %q, want %q", got, OriginBoth)
	}
	if got := f.Origin("home"); got != OriginState {
		t.Errorf("origin home: got %q, want %q", got, OriginState)
	}
}

func TestLoadFilesMergedValidation(t *testing.T) {
	dir := t.TempDir()
	cfgPath, statePath := filepath.Join(dir, "config.toml"), filepath.Join(dir, "state.toml")
	// An override of an account nobody defined is an incomplete account.
	writeFile(t, cfgPath, "[accounts.ghost]\nkeepalive = \"5m\"\n")
	_, _, err := LoadFiles(cfgPath, statePath)
	if err == nil || !strings.Contains(err.Error(), `account "ghost": kind: missing`) {
		t.Fatalf("got %v, want the missing kind of ghost", err)
	}
	// A secret in config.toml is refused as before.
	writeFile(t, cfgPath, "[accounts.ghost]\nrefresh_token = \"x\"\n")
	if _, _, err := LoadFiles(cfgPath, statePath); err == nil || !strings.Contains(err.Error(), "looks like a secret") {
		t.Fatalf("got %v, want the secret refused", err)
	}
}

func TestUpdateStateSerializesWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.toml")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := UpdateState(path, func(st *Config) error {
				st.Accounts[fmt.Sprintf("a%d", i)] = &AccountConfig{Kind: "app-password", Server: "https://x.example", User: "u"}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st, _, err := readConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Accounts) != 20 {
		t.Fatalf("accounts: got %d, want 20 (a write was lost)", len(st.Accounts))
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("# Managed by ncagent")) {
		t.Errorf("state file header: got %q", data[:40])
	}
	checkMode(t, path, 0o600)
}

// TestAgentReloadsLive: an edit of config.toml or the state file reaches a
// running agent without a restart, by polling and by SIGHUP; a broken edit
// keeps the previous config; log_level applies live; store and
// identity_file say they need a restart.
func TestAgentReloadsLive(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, "[accounts.home]\nkind = \"app-password\"\nserver = \"https://nc.example\"\nuser = \"bob\"\n")
	logs := &syncBuffer{}
	level := new(slog.LevelVar)
	a, err := New(Options{ConfigPath: cfgPath, Store: NewKeychain("ncagent-reload-test", time.Second),
		Logger:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
		LogLevel:       level,
		ReloadInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.watchFiles(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	changes, unsub := a.Subscribe()
	defer unsub()

	names := func() []string {
		var n []string
		for _, st := range a.broker.Status() {
			n = append(n, st.Name)
		}
		slices.Sort(n)
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for !ok() {
			select {
			case <-changes:
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%s: not applied within 5s; log:\n%s", what, logs.String())
			}
		}
	}

	// Add an account by hand, and a default.
	writeFile(t, cfgPath, `[agent]
default_account = "work"
log_level = "debug"
[accounts.home]
kind = "app-password"
server = "https://nc.example"
user = "bob"
[accounts.work]
kind = "app-password"
server = "https://work.example"
user = "alice"
`)
	waitFor("added account", func() bool { return slices.Equal(names(), []string{"home", "work"}) })
	waitFor("default", func() bool { return a.DefaultAccount() == "work" })
	waitFor("log_level applied", func() bool {
		return strings.Contains(logs.String(), "config reloaded: log_level") && level.Level() == slog.LevelDebug
	})

	// A broken edit is logged and not applied. (Written atomically: a
	// moment of empty file would be a valid config with no account.)
	writeAtomic(cfgPath, false, writeBytes([]byte("[accounts.home\n")))
	waitFor("broken config logged", func() bool { return strings.Contains(logs.String(), "config not reloaded") })
	if got := names(); !slices.Equal(got, []string{"home", "work"}) {
		t.Fatalf("after a broken edit: got %q, want the previous accounts", got)
	}

	// The state file (what the account verbs write) counts too; SIGHUP
	// reloads even when the poll has not run yet.
	writeAtomic(cfgPath, false, writeBytes(nil))
	if err := UpdateState(a.opts.StatePath, func(st *Config) error {
		st.Accounts["lab"] = &AccountConfig{Kind: "app-password", Server: "https://lab.example", User: "carol"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor("state file account", func() bool { return slices.Equal(names(), []string{"lab"}) })

	// store and identity_file are read at start: a change says so and
	// leaves the store in use alone.
	writeAtomic(cfgPath, false, writeBytes([]byte("[agent]\nstore = \"file\"\nidentity_file = \"~/age.txt\"\n")))
	waitFor("store change logged", func() bool {
		return strings.Contains(logs.String(), "store and identity_file not applied") && strings.Contains(logs.String(), "ncagent stop")
	})
	if _, ok := a.store.(*Keychain); !ok {
		t.Fatalf("store after the reload: got %T, want the keychain it started with", a.store)
	}
	if got := names(); !slices.Equal(got, []string{"lab"}) {
		t.Fatalf("after the store change: got %q, want the accounts applied", got)
	}
}
