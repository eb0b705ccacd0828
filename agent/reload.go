package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"time"

	"github.com/ncagent/ncagent/internal/recovery"
)

// filesStamp fingerprints the contents of config.toml and the state file,
// so that the watcher sees every change, even one within the granularity of
// the file system's modification times. A missing file has its own stamp.
func filesStamp(paths ...string) string {
	h := sha256.New()
	for _, p := range paths {
		// Not os.Open: a FIFO put in a file's place would block the
		// watcher for good. LoadFiles says what is wrong with it.
		f, err := openNoBlock(p)
		if err != nil {
			io.WriteString(h, "missing\x00")
			continue
		}
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			io.WriteString(h, "irregular\x00")
		} else {
			io.Copy(h, io.LimitReader(f, maxConfigSize+1))
		}
		f.Close()
		io.WriteString(h, "\x00end\x00")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// watchFiles reloads the config when config.toml or the state file
// changes (checked every ReloadInterval) and on SIGHUP, until ctx is done.
// Polling keeps the agent free of a file-notification dependency; the
// files are small.
func (a *Agent) watchFiles(ctx context.Context) {
	hup, stop := notifyReload()
	defer stop()
	tick := time.NewTicker(a.opts.ReloadInterval)
	defer tick.Stop()
	// A change is applied once it has held for one interval: an editor
	// that truncates and rewrites in place shows a moment of empty file,
	// which must not drop every account.
	pending := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.closeCh:
			return
		case <-hup:
			a.log.Info("config reload requested (SIGHUP)")
			a.reloadGuarded()
		case <-tick.C:
			a.mu.Lock()
			old := a.stamp
			a.mu.Unlock()
			now := filesStamp(a.opts.ConfigPath, a.opts.StatePath)
			switch {
			case now == old:
				pending = ""
			case now == pending:
				pending = ""
				a.reloadGuarded()
			default:
				pending = now
			}
		}
	}
}

// Reload reads config.toml and the state file again and applies what can
// be applied live: accounts added, changed and removed, the default
// account, log_level (unless the command line set it). What needs a
// restart (store, identity_file) is logged. An invalid config is logged
// and not applied: the agent keeps serving the previous one.
func (a *Agent) Reload() error {
	stamp := filesStamp(a.opts.ConfigPath, a.opts.StatePath)
	files, warnings, err := LoadFiles(a.opts.ConfigPath, a.opts.StatePath)
	if err != nil {
		a.mu.Lock()
		a.stamp = stamp // say it once, not every tick
		a.mu.Unlock()
		a.log.Error("config not reloaded: fix the file; the agent keeps the previous config", "err", err)
		return err
	}
	for _, w := range warnings {
		a.log.Warn("config", "warning", w)
	}
	a.apply(files.Config, stamp)
	return nil
}

// apply makes next the agent's config and hands the account changes to
// the broker.
func (a *Agent) apply(next *Config, stamp string) {
	a.mu.Lock()
	prev := a.cfg
	a.cfg = next
	a.stamp = stamp
	a.mu.Unlock()
	changed := false
	for name := range prev.Accounts {
		if _, ok := next.Accounts[name]; !ok {
			a.broker.RemoveAccount(name)
			a.log.Info("config reloaded: account removed", "account", name)
			changed = true
		}
	}
	for _, name := range next.AccountNames() {
		ac := next.Accounts[name]
		old, ok := prev.Accounts[name]
		if ok && reflect.DeepEqual(old, ac) {
			continue
		}
		changed = true
		if err := a.installAccount(name, ac); err != nil {
			a.log.Error("config reloaded: account not loaded", "account", name, "err", err)
			continue
		}
		if ok {
			a.log.Info("config reloaded: account changed", "account", name)
		} else {
			a.log.Info("config reloaded: account added", "account", name)
		}
	}
	if prev.Agent.DefaultAccount != next.Agent.DefaultAccount {
		a.log.Info("config reloaded: default account", "account", next.Agent.DefaultAccount)
		changed = true
	}
	if prev.Agent.LogLevel != next.Agent.LogLevel {
		if a.opts.LogLevel == nil {
			a.log.Warn("config reloaded: log_level not applied: --log-level or NCAGENT_LOG_LEVEL sets the level of this agent", "log_level", next.Agent.LogLevel)
		} else {
			setLogLevel(a.opts.LogLevel, next.Agent.LogLevel)
			a.log.Info("config reloaded: log_level", "log_level", next.Agent.LogLevel)
		}
	}
	if prev.Agent.Store != next.Agent.Store || prev.Agent.IdentityFile != next.Agent.IdentityFile {
		// The store holds the secrets the broker is using, and a file
		// store may hold a key only unlock gave it: switching live could
		// strand a rotated refresh token in the store being left.
		a.log.Warn("config reloaded: store and identity_file not applied: they take effect when the agent restarts (run ncagent stop; the next command starts it)",
			"store", next.Agent.Store, "identity_file", next.Agent.IdentityFile)
	}
	if changed {
		a.notify()
	}
}

// setLogLevel sets lv from a log_level value; empty is info. Validate has
// checked the value.
func setLogLevel(lv *slog.LevelVar, s string) {
	if lv == nil {
		return
	}
	var l slog.Level
	if s != "" && l.UnmarshalText([]byte(s)) != nil {
		return
	}
	lv.Set(l)
}

// DefaultAccount returns the account that answers requests naming none,
// or "" when there is none (no account, or several and no default).
func (a *Agent) DefaultAccount() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, err := a.cfg.DefaultAccount()
	if err != nil {
		return ""
	}
	return name
}

// saveSignedIn records in the state file what sign-in learned of account
// name, makes the first account the default, and reloads the config. The
// user's config.toml is not touched.
func (a *Agent) saveSignedIn(name string, ac *AccountConfig) error {
	a.mu.Lock()
	prevDefault, _ := a.cfg.DefaultAccount()
	none := len(a.cfg.Accounts) == 0
	a.mu.Unlock()
	err := UpdateState(a.opts.StatePath, func(st *Config) error {
		st.Accounts[name] = ac.managed()
		user, _, err := readConfigFile(a.opts.ConfigPath)
		if err != nil {
			return err
		}
		if user.Agent.DefaultAccount != "" {
			return nil
		}
		if _, ok := st.Accounts[st.Agent.DefaultAccount]; ok {
			return nil
		}
		switch {
		case prevDefault != "":
			// Keep the account that answered alone as the default, so a
			// second account does not break unnamed requests.
			st.Agent.DefaultAccount = prevDefault
		case none:
			st.Agent.DefaultAccount = name
		}
		return nil
	})
	if err != nil {
		// Keep serving the account from memory.
		a.mu.Lock()
		next := *a.cfg
		next.Accounts = map[string]*AccountConfig{}
		for n, c := range a.cfg.Accounts {
			next.Accounts[n] = c
		}
		next.Accounts[name] = ac
		a.cfg = &next
		a.mu.Unlock()
		return err
	}
	// The broker has the account from this sign-in already, with its
	// fresh token (commitSignIn): the reload must not install it again,
	// which would drop that token (on a one-token provider such as the
	// Nextcloud oidc app, the refresh that follows kills it). So the
	// agent's view takes the account as the files now say it is first.
	if files, _, err := LoadFiles(a.opts.ConfigPath, a.opts.StatePath); err == nil {
		if merged := files.Config.Accounts[name]; merged != nil {
			a.mu.Lock()
			next := *a.cfg
			next.Accounts = maps.Clone(a.cfg.Accounts)
			if next.Accounts == nil {
				next.Accounts = map[string]*AccountConfig{}
			}
			next.Accounts[name] = merged
			a.cfg = &next
			a.mu.Unlock()
		}
	}
	return a.Reload()
}

// reloadGuarded is Reload for the watcher goroutine, which runs outside
// net/http's per-request recover: a panic is logged with its stack (never
// its value, see internal/recovery) and the old config stays in force.
func (a *Agent) reloadGuarded() {
	defer func() { recovery.Log(a.log, "config reload", recover()) }()
	a.Reload()
}
