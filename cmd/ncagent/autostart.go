package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ncagent/ncagent/packaging"
)

func init() {
	register(verb{name: "autostart", summary: "start ncagent at login: enable, disable, status", run: runAutostart})
}

// autostartEnv returns the environment the autostart functions work in;
// tests replace it to point at temporary directories and a fake runner.
var autostartEnv = func(e *env) (packaging.Env, error) { return packaging.NewEnv(e.getenv) }

const autostartHelp = `Start ncagent at login, for this user only (never system-wide, never root).

  enable    install the start-at-login entries for this binary and start the
            agent; running it again changes nothing
  disable   stop the agent's service and remove what enable wrote; files
            ncagent did not write are left alone
  status    show what is installed and whether it starts this binary
  session   what the desktop entries run at login (see below)

Linux: a user socket unit ncagent.socket and service ncagent.service in
$XDG_CONFIG_HOME/systemd/user, enabled with systemctl --user, and an XDG
autostart entry. The socket unit owns the agent socket, so exactly one agent
serves it. At desktop login the autostart entry runs "ncagent autostart
session", which hands the session's display to the service (restarting it if
it runs without one) so the agent shows its tray; without an active
ncagent.socket it runs the agent itself.
macOS: the LaunchAgent ~/Library/LaunchAgents/org.ncagent.agent.plist.
Windows: the ncagent value of HKCU\Software\Microsoft\Windows\CurrentVersion\Run.`

func runAutostart(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "autostart", "enable|disable|status|session", autostartHelp)
	asJSON := fs.Bool("json", false, "print a JSON document")
	dryRun := fs.Bool("dry-run", false, "enable, disable: say what would change, change nothing")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		errorf(e, "autostart needs a command: enable, disable, status or session: run ncagent autostart --help")
		return exitUsage
	}
	sub := fs.Arg(0)
	// Flags may follow the subcommand: ncagent autostart enable --json.
	if code, done := parseFlags(fs, fs.Args()[1:]); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "autostart %s: unexpected argument %q: run ncagent autostart --help", sub, fs.Arg(0))
		return exitUsage
	}
	switch sub {
	case "enable", "disable", "status", "session":
	default:
		errorf(e, "autostart: unknown command %q: use enable, disable, status or session", sub)
		return exitUsage
	}
	penv, err := autostartEnv(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}

	switch sub {
	case "status":
		st, err := packaging.Status(ctx, penv)
		if err != nil {
			return autostartError(e, err)
		}
		if *asJSON {
			return autostartJSON(e, st)
		}
		printAutostartState(e.stdout, st)
		for _, w := range st.Warnings {
			fmt.Fprintf(e.stderr, "ncagent: warning: %s\n", w)
		}
		return exitOK
	case "session":
		res, err := packaging.Session(ctx, penv)
		if err != nil {
			return autostartError(e, err)
		}
		if res.Action == packaging.SessionRunHere {
			// No socket-activated agent: this process becomes the agent.
			if _, ok := verbs["run"]; !ok {
				errorf(e, "autostart session: this build has no run command")
				return exitError
			}
			return run(ctx, e, []string{"run"})
		}
		if *asJSON {
			return autostartJSON(e, res)
		}
		fmt.Fprintln(e.stdout, res.Detail)
		return exitOK
	}

	do := packaging.Enable
	if sub == "disable" {
		do = packaging.Disable
	}
	r, err := do(ctx, penv, *dryRun)
	if *asJSON {
		if code := autostartJSON(e, r); code != exitOK {
			return code
		}
	} else {
		for _, l := range r.Lines() {
			fmt.Fprintln(e.stdout, l)
		}
		if err == nil {
			switch {
			case !r.Changed && sub == "enable":
				fmt.Fprintln(e.stdout, "autostart is already enabled: nothing changed")
			case !r.Changed:
				fmt.Fprintln(e.stdout, "autostart was not enabled: nothing removed")
			case *dryRun:
				fmt.Fprintln(e.stdout, "dry run: nothing changed")
			}
		}
	}
	if err != nil {
		return autostartError(e, err)
	}
	return exitOK
}

func autostartError(e *env, err error) int {
	if errors.Is(err, packaging.ErrUnsupported) {
		errorf(e, "%v: start ncagent run from your session's startup files instead", err)
		return exitError
	}
	errorf(e, "%v", err)
	return exitError
}

func autostartJSON(e *env, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		errorf(e, "write json: %v", err)
		return exitError
	}
	return exitOK
}

func printAutostartState(w io.Writer, st packaging.State) {
	state := "not enabled"
	if st.Enabled {
		state = "enabled"
	}
	fmt.Fprintf(w, "autostart: %s (%s)\nbinary:    %s\n", state, st.Mechanism, st.Executable)
	for _, en := range st.Entries {
		var d []string
		switch {
		case !en.Installed:
			d = append(d, "not installed")
		case en.Managed:
			d = append(d, "written by ncagent")
		default:
			d = append(d, "written by hand")
		}
		if en.Installed && en.Executable != "" {
			if en.Current {
				d = append(d, "starts this binary")
			} else {
				d = append(d, "starts "+en.Executable)
			}
		}
		if en.Installed && en.Managed && !en.UpToDate {
			d = append(d, "outdated")
		}
		fmt.Fprintf(w, "  %-16s %s: %s\n", en.Kind, en.Path, strings.Join(d, ", "))
	}
	if m := st.Manager; m != nil {
		if m.Available {
			fmt.Fprintf(w, "%s: available\n", m.Name)
		} else {
			fmt.Fprintf(w, "%s: not available: %s\n", m.Name, m.Detail)
		}
		for _, u := range m.Units {
			if u.Enabled != "" {
				fmt.Fprintf(w, "  %s: %s, %s\n", u.Name, u.Enabled, u.Active)
			} else {
				fmt.Fprintf(w, "  %s: %s\n", u.Name, u.Active)
			}
		}
	}
	for _, n := range st.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
