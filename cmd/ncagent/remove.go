package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "remove", summary: "revoke an account and forget it", run: runRemove})
}

func runRemove(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "remove", "ACCOUNT", `Remove ACCOUNT: revoke its access at the server where possible (as
ncagent revoke does), have the agent delete its secrets from its store
(keychain or file store) and drop its cached tokens, and forget the
account. On a terminal it asks first; scripts pass
--yes.

An account you defined in config.toml stays there (ncagent never edits that
file): remove its [accounts.ACCOUNT] table yourself.`)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	if account == "" {
		errorf(e, "remove needs an account: ncagent remove ACCOUNT")
		return exitUsage
	}
	files, err := loadFiles(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	ac, ok := files.Config.Accounts[account]
	if !ok {
		errorf(e, "no account %q: run ncagent accounts to list them", account)
		return exitError
	}
	if !*yes {
		if !isTerminal(e.stdin) {
			errorf(e, "remove %s needs confirmation, and stdin is not a terminal: run ncagent remove %s --yes", account, account)
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "Remove account %s (%s at %s)? Its access is revoked and its secret deleted. [y/N] ", account, dash(ac.User), dash(ac.Server))
		yes, err := confirmed(ctx, e.stdin)
		if err != nil {
			fmt.Fprintln(e.stderr)
			errorf(e, "%v: nothing removed", err)
			return exitInterrupted
		}
		if !yes {
			fmt.Fprintln(e.stderr, "ncagent: nothing removed")
			return exitError
		}
	}

	// Revoke and forget through the agent: it owns the refresh chain, the
	// secret store (keychain or file store) and the cached tokens.
	var r ipc.RevokeResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		r, err = cl.Revoke(ctx, ipc.RevokeRequest{Account: account, Forget: true})
		return err
	})
	var we *ipc.Error
	switch {
	case err == nil:
		printRevoke(e, account, r)
	case errors.As(err, &we) && we.Code == ipc.CodeUnknownAccount:
		// The agent does not serve it (a broken entry): forget it anyway.
	default:
		return clientExit(e, path, err)
	}
	origin := files.Origin(account)
	if origin != agent.OriginConfig {
		err = agent.UpdateState(files.StatePath, func(st *agent.Config) error {
			delete(st.Accounts, account)
			if st.Agent.DefaultAccount == account {
				st.Agent.DefaultAccount = ""
			}
			return nil
		})
		if err != nil {
			errorf(e, "%v", err)
			return exitError
		}
	}
	if origin != agent.OriginState {
		fmt.Fprintf(e.stderr, "ncagent: %s is defined in %s, which ncagent never edits: delete its [accounts.%s] table to forget it there\n", account, files.ConfigPath, account)
	}
	if origin == agent.OriginState {
		err := reloadAgent(ctx, path, func(st ipc.StatusResponse) bool {
			for _, a := range st.Accounts {
				if a.Name == account {
					return false
				}
			}
			return true
		})
		if err != nil {
			errorf(e, "%v", err)
			return exitError
		}
		fmt.Fprintf(e.stdout, "ncagent: removed account %s\n", account)
	}
	return exitOK
}

// isTerminal reports whether r is a terminal (a character device).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// confirmed reads one line and reports whether it says yes. Ctrl-C (ctx)
// ends it at once with errInterrupted (see readInterruptible).
func confirmed(ctx context.Context, r io.Reader) (bool, error) {
	line, err := readInterruptible(ctx, func() ([]byte, error) {
		return bufio.NewReader(r).ReadBytes('\n')
	})
	if errors.Is(err, errInterrupted) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(string(line))) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
