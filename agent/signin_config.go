package agent

// currentAccountConfig returns the account's config as a sign-in must see
// it: config.toml merged with the state file as they are on disk now
// (LoadFiles), so that an edit (a new
// redirect_host, scopes, client id) takes effect on the next sign-in of a
// running agent; the agent's view when the file cannot be read or no
// longer names the account. The caller may not modify the result.
func (a *Agent) currentAccountConfig(name string) *AccountConfig {
	a.mu.Lock()
	mem := a.cfg.Accounts[name]
	a.mu.Unlock()
	if a.opts.ConfigPath == "" {
		return mem
	}
	fresh, _, err := LoadFiles(a.opts.ConfigPath, a.opts.StatePath)
	if err != nil {
		return mem
	}
	if ac := fresh.Config.Accounts[name]; ac != nil {
		return ac
	}
	return mem
}
