package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"text/tabwriter"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "accounts", summary: "list the accounts and mark the default", run: runAccounts})
	register(verb{name: "default", summary: "show or set the default account", run: runDefault})
}

// accountEntry is one account of ncagent accounts --json.
type accountEntry struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Server  string   `json:"server,omitempty"`
	Issuer  string   `json:"issuer,omitempty"`
	User    string   `json:"user,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	Default bool     `json:"default"`
	// Origin: "state" (added by sign-in), "config" (config.toml) or both.
	Origin string `json:"origin"`
	// State is the running agent's view; empty when no agent runs.
	State string `json:"state,omitempty"`
}

type accountsDoc struct {
	Default      string         `json:"default,omitempty"`
	Config       string         `json:"config"`
	StateFile    string         `json:"state_file"`
	AgentRunning bool           `json:"agent_running"`
	Accounts     []accountEntry `json:"accounts"`
}

func runAccounts(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "accounts", "", `List the configured accounts: name, kind, server, user, where the account
is defined (state: added by sign-in; config: your config.toml; both), and
its state when an agent runs (no agent is started for this). The default
account, which answers commands that name none, is marked with *.`)
	var cf clientFlags
	cf.register(fs, e, 0)
	asJSON := fs.Bool("json", false, "print the list as JSON")
	namesOnly := fs.Bool("names", false, "print only the names, one a line (for scripts and shell completion)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "accounts takes no arguments: run ncagent accounts --help")
		return exitUsage
	}
	files, err := loadFiles(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	if *namesOnly {
		for _, n := range files.Config.AccountNames() {
			fmt.Fprintln(e.stdout, n)
		}
		return exitOK
	}
	doc := accountsDoc{Config: files.ConfigPath, StateFile: files.StatePath, Accounts: []accountEntry{}}
	doc.Default, _ = files.Config.DefaultAccount()
	states := map[string]string{}
	if path, err := cf.socketPath(e); err == nil {
		if st, ok, _ := runningAgent(ctx, path); ok {
			doc.AgentRunning = true
			for _, a := range st.Accounts {
				states[a.Name] = a.State
			}
		}
	}
	for _, name := range files.Config.AccountNames() {
		ac := files.Config.Accounts[name]
		doc.Accounts = append(doc.Accounts, accountEntry{
			Name: name, Kind: ac.Kind, Server: ac.Server, Issuer: ac.Issuer, User: ac.User,
			Scopes: slices.Clone(ac.Scopes), Default: name == doc.Default,
			Origin: string(files.Origin(name)), State: states[name],
		})
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(doc)
		return exitOK
	}
	if len(doc.Accounts) == 0 {
		fmt.Fprintln(e.stderr, "ncagent: no accounts: add one with ncagent login NAME --server URL")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tNAME\tKIND\tSERVER\tUSER\tSTATE\tDEFINED IN")
	for _, a := range doc.Accounts {
		mark, state := " ", a.State
		if a.Default {
			mark = "*"
		}
		if state == "" {
			state = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, a.Name, a.Kind, dash(a.Server), dash(a.User), state, a.Origin)
	}
	tw.Flush()
	if !doc.AgentRunning {
		fmt.Fprintln(e.stderr, "ncagent: no agent is running: states are shown once one runs (ncagent run, or any command that needs one)")
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runDefault(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "default", "[ACCOUNT]", `Make ACCOUNT the default account: the one token, exec, status and the tray
use when no account is named. Without ACCOUNT, print the default account.

The choice is kept in ncagent's state file. A default_account set in your
config.toml wins over it; ncagent never edits config.toml.`)
	var cf clientFlags
	cf.register(fs, e, 0)
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	files, err := loadFiles(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	if account == "" {
		d, err := files.Config.DefaultAccount()
		if err != nil {
			errorf(e, "%v", err)
			return exitError
		}
		fmt.Fprintln(e.stdout, d)
		return exitOK
	}
	if _, ok := files.Config.Accounts[account]; !ok {
		errorf(e, "no account %q: run ncagent accounts to list them, or ncagent login %s --server URL to add it", account, account)
		return exitError
	}
	if u := files.User.Agent.DefaultAccount; u != "" && u != account {
		errorf(e, "%s sets default_account = %q, which wins: edit that line to change the default", files.ConfigPath, u)
		return exitError
	}
	err = agent.UpdateState(files.StatePath, func(st *agent.Config) error {
		st.Agent.DefaultAccount = account
		return nil
	})
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	if path, err := cf.socketPath(e); err == nil {
		if err := reloadAgent(ctx, path, func(st ipc.StatusResponse) bool { return st.DefaultAccount == account }); err != nil {
			errorf(e, "%v", err)
			return exitError
		}
	}
	fmt.Fprintf(e.stdout, "ncagent: the default account is now %s\n", account)
	return exitOK
}
