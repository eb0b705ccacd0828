package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "status", summary: "show the agent and its accounts", run: runStatus})
}

func runStatus(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "status", "", `Show whether the agent runs, and each account's state and token expiries.

Exit codes: 0 the agent runs and every account is usable, 3 no agent runs,
4 an account needs sign-in, 6 the secret store is locked or missing
(run ncagent unlock). status never starts an agent.`)
	var cf clientFlags
	cf.register(fs, e, 5*time.Second)
	asJSON := fs.Bool("json", false, "print the /v1/status document")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cf.noStart = true
	var st ipc.StatusResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		st, err = cl.Status(ctx)
		return err
	})
	if errors.Is(err, ipc.ErrNotRunning) {
		// status never starts one, whatever --no-start says.
		errorf(e, "no agent is running on %s: start one with ncagent run (or any command that needs one)", path)
		return exitNotRunning
	}
	if err != nil {
		return clientExit(e, path, err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		printStatus(e.stdout, st, path, time.Now())
		printSessions(e.stdout, st.ExecSessions, time.Now()) // exec_status.go
	}
	for _, a := range st.Accounts {
		if a.State == "needs-login" || a.State == "signed-out" {
			return exitNeedsLogin
		}
	}
	for _, a := range st.Accounts {
		if a.Store != "" {
			return exitStoreLocked
		}
	}
	return exitOK
}

func printStatus(w io.Writer, st ipc.StatusResponse, path string, now time.Time) {
	fmt.Fprintf(w, "ncagent %s running (pid %d) on %s\n", st.Version, st.PID, path)
	if st.SecretStore != "" {
		fmt.Fprintf(w, "secrets: %s\n", st.SecretStore)
	}
	if len(st.Accounts) == 0 {
		fmt.Fprintf(w, "no accounts: add one with ncagent login NAME --server https://cloud.example.com\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nACCOUNT\tKIND\tUSER\tSTATE\tDETAILS")
	for _, a := range st.Accounts {
		user := a.User
		if host := hostOf(a.Server); host != "" {
			if user == "" {
				user = host
			} else {
				user += "@" + host
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Kind, user, a.State, accountDetails(a, now))
	}
	tw.Flush()
}

func accountDetails(a ipc.AccountStatus, now time.Time) string {
	var parts []string
	switch a.State {
	case "needs-login", "signed-out":
		parts = append(parts, "run ncagent login "+a.Name)
	case "signed-in":
		if a.Kind == "app-password" {
			parts = append(parts, "app password, no expiry")
		}
	}
	if a.Store != "" {
		parts = append(parts, a.Store)
	}
	for _, t := range a.Tokens {
		left := t.ExpiresAt.Sub(now).Truncate(time.Second)
		label := "token"
		if len(t.Scopes) > 0 {
			label += " [" + strings.Join(t.Scopes, " ") + "]"
		}
		if left > 0 {
			parts = append(parts, fmt.Sprintf("%s valid %s", label, left))
		} else {
			parts = append(parts, label+" expired")
		}
	}
	if !a.RefreshExpiry.IsZero() {
		parts = append(parts, fmt.Sprintf("refresh token expires in %s", a.RefreshExpiry.Sub(now).Truncate(time.Second)))
	}
	if a.Degraded {
		parts = append(parts, "degraded: keychain write pending")
	}
	if a.LastError != "" {
		parts = append(parts, "last error: "+a.LastError)
	}
	return strings.Join(parts, "; ")
}

func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}
