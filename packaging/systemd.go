package packaging

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Unit names of the systemd user units.
const (
	ServiceUnit = "ncagent.service"
	SocketUnit  = "ncagent.socket"
)

// systemdBackend writes the user units and the XDG autostart entry (Linux).
type systemdBackend struct{}

func unitDir(env Env) string { return filepath.Join(env.configHome(), "systemd", "user") }
func autostartPath(env Env) string {
	return filepath.Join(env.configHome(), "autostart", "ncagent.desktop")
}

// wantsLink is the enablement symlink `systemctl --user enable` creates for
// WantedBy=sockets.target.
func wantsLink(env Env) string {
	return filepath.Join(unitDir(env), "sockets.target.wants", SocketUnit)
}

func (systemdBackend) files(env Env) (service, socket, desktop fileSpec, err error) {
	d := Data{Executable: env.Executable, Managed: true}
	render := func(kind, name, path string, program func([]byte) string) (fileSpec, error) {
		b, err := Render(name, d)
		return fileSpec{kind: kind, path: path, content: b, program: program}, err
	}
	if service, err = render("systemd-service", ServiceTemplate, filepath.Join(unitDir(env), ServiceUnit), unitProgram); err != nil {
		return
	}
	if socket, err = render("systemd-socket", SocketTemplate, filepath.Join(unitDir(env), SocketUnit), nil); err != nil {
		return
	}
	desktop, err = render("xdg-autostart", AutostartTemplate, autostartPath(env), desktopProgram)
	return
}

// unitProgram returns the program of a unit file's ExecStart=.
func unitProgram(content []byte) string {
	return keyValue(content, "ExecStart", parseSystemdExec)
}

// desktopProgram returns the program of a desktop entry's Exec key.
func desktopProgram(content []byte) string {
	return keyValue(content, "Exec", parseDesktopExec)
}

// keyValue finds the first "key=value" line and parses its value.
func keyValue(content []byte, key string, parse func(string) string) string {
	sc := bufio.NewScanner(bytes.NewReader(content))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == key {
			return parse(v)
		}
	}
	return ""
}

// userManager reports whether systemctl exists and a systemd user manager
// answers; detail says why not.
func userManager(ctx context.Context, env Env) (haveSystemctl, reachable bool, detail string) {
	if _, err := env.Runner.LookPath("systemctl"); err != nil {
		return false, false, "systemctl not found"
	}
	out, err := env.Runner.Run(ctx, "systemctl", "--user", "show", "--property=Version")
	if err != nil {
		return true, false, "no systemd user manager (" + firstLine(out, err) + ")"
	}
	return true, true, ""
}

func systemctl(args ...string) []string { return append([]string{"systemctl", "--user"}, args...) }

// run runs a state-changing command, or records it in a dry run.
func run(ctx context.Context, env Env, r *Report, cmd []string) error {
	if r.DryRun {
		r.add(Action{Op: OpRun, Command: cmd})
		return nil
	}
	out, err := env.Runner.Run(ctx, cmd[0], cmd[1:]...)
	if err != nil {
		r.add(Action{Op: OpFail, Command: cmd, Detail: firstLine(out, err)})
		return fmt.Errorf("autostart: %s: %w", strings.Join(cmd, " "), err)
	}
	r.add(Action{Op: OpRun, Command: cmd})
	return nil
}

// query runs a read-only systemctl query and returns its trimmed output.
func query(ctx context.Context, env Env, args ...string) string {
	out, _ := env.Runner.Run(ctx, "systemctl", systemctl(args...)[1:]...)
	return strings.TrimSpace(firstLine(out, nil))
}

func (b systemdBackend) enable(ctx context.Context, env Env, r *Report) error {
	service, socket, desktop, err := b.files(env)
	if err != nil {
		return err
	}
	unitsChanged := false
	serviceChanged := false
	for _, f := range []fileSpec{service, socket, desktop} {
		changed, err := f.write(env, r)
		if err != nil {
			return err
		}
		if changed && f.kind != "xdg-autostart" {
			unitsChanged = true
			serviceChanged = serviceChanged || f.kind == "systemd-service"
		}
	}
	haveSystemctl, reachable, detail := userManager(ctx, env)
	switch {
	case !haveSystemctl:
		r.add(Action{Op: OpSkip, Command: systemctl("enable", "--now", SocketUnit),
			Detail: detail + ": the units are in place for systemd; until then the desktop entry starts the agent at login"})
		return nil
	case !reachable:
		// systemctl enables units offline: it only creates the
		// sockets.target.wants symlink, so the socket starts at the next login.
		if !isLink(wantsLink(env)) {
			if err := run(ctx, env, r, systemctl("enable", SocketUnit)); err != nil {
				return err
			}
		}
		r.add(Action{Op: OpSkip, Command: systemctl("start", SocketUnit),
			Detail: detail + ": the socket starts at your next login (or run systemctl --user start " + SocketUnit + " in a session that has one)"})
		return nil
	}
	if unitsChanged {
		if err := run(ctx, env, r, systemctl("daemon-reload")); err != nil {
			return err
		}
	}
	if unitsChanged || query(ctx, env, "is-enabled", SocketUnit) != "enabled" || query(ctx, env, "is-active", SocketUnit) != "active" {
		if err := run(ctx, env, r, systemctl("enable", "--now", SocketUnit)); err != nil {
			return err
		}
	}
	if serviceChanged {
		// A running agent keeps its old ExecStart until restarted;
		// try-restart does nothing when it is not running.
		if err := run(ctx, env, r, systemctl("try-restart", ServiceUnit)); err != nil {
			return err
		}
	}
	return nil
}

func isLink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func (b systemdBackend) disable(ctx context.Context, env Env, r *Report) error {
	service, socket, desktop, err := b.files(env)
	if err != nil {
		return err
	}
	var ours []string // units whose files we remove
	for _, f := range []fileSpec{socket, service} {
		e, _, err := f.inspect(env)
		if err != nil {
			return err
		}
		if e.Installed && e.Managed {
			ours = append(ours, filepath.Base(f.path))
		}
	}
	haveSystemctl, reachable, detail := userManager(ctx, env)
	if len(ours) > 0 {
		switch {
		case reachable:
			if err := run(ctx, env, r, systemctl(append([]string{"disable", "--now"}, ours...)...)); err != nil {
				return err
			}
		case haveSystemctl:
			if isLink(wantsLink(env)) {
				if err := run(ctx, env, r, systemctl(append([]string{"disable"}, ours...)...)); err != nil {
					return err
				}
			}
		default:
			r.add(Action{Op: OpSkip, Command: systemctl("disable", "--now", SocketUnit), Detail: detail})
		}
		// Without systemctl (or if it left it), remove the enablement
		// symlink ourselves when it points at our socket unit.
		if l := wantsLink(env); isLink(l) {
			if t, err := os.Readlink(l); err == nil && filepath.Base(t) == SocketUnit {
				r.add(Action{Op: OpRemove, Path: l})
				if !r.DryRun {
					if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("autostart: remove %s: %w", l, err)
					}
				}
			}
		}
	}
	removedUnit := false
	for _, f := range []fileSpec{service, socket, desktop} {
		removed, err := f.remove(env, r)
		if err != nil {
			return err
		}
		removedUnit = removedUnit || (removed && f.kind != "xdg-autostart")
	}
	if removedUnit && reachable {
		return run(ctx, env, r, systemctl("daemon-reload"))
	}
	return nil
}

func (b systemdBackend) status(ctx context.Context, env Env) (State, error) {
	st := State{Platform: env.GOOS, Mechanism: "systemd-socket+xdg-autostart", Executable: env.Executable}
	service, socket, desktop, err := b.files(env)
	if err != nil {
		return st, err
	}
	st.Enabled = true
	for _, f := range []fileSpec{service, socket, desktop} {
		e, _, err := f.inspect(env)
		if err != nil {
			return st, err
		}
		st.Entries = append(st.Entries, e)
		st.Enabled = st.Enabled && e.Installed && e.Current
		switch {
		case !e.Installed:
		case !e.Managed:
			st.Notes = append(st.Notes, fmt.Sprintf("%s was written by hand (no %q marker): ncagent autostart leaves it alone", e.Path, ManagedMarker))
		case !e.Current && e.Executable != "":
			st.Notes = append(st.Notes, fmt.Sprintf("%s starts %s, not this binary: run ncagent autostart enable to point it here", e.Path, e.Executable))
		case !e.UpToDate:
			st.Notes = append(st.Notes, fmt.Sprintf("%s differs from what this version writes: run ncagent autostart enable to update it", e.Path))
		}
	}
	haveSystemctl, reachable, detail := userManager(ctx, env)
	m := &Manager{Name: "systemd", Available: reachable, Detail: detail}
	st.Manager = m
	switch {
	case reachable:
		for _, u := range []string{SocketUnit, ServiceUnit} {
			m.Units = append(m.Units, UnitState{Name: u, Enabled: query(ctx, env, "is-enabled", u), Active: query(ctx, env, "is-active", u)})
		}
		st.Enabled = st.Enabled && m.Units[0].Enabled == "enabled"
	case haveSystemctl:
		// Offline, the enablement symlink is the whole truth.
		en := "disabled"
		if isLink(wantsLink(env)) {
			en = "enabled"
		}
		m.Units = append(m.Units, UnitState{Name: SocketUnit, Enabled: en, Active: "unknown"})
		st.Enabled = st.Enabled && en == "enabled"
	}
	st.Notes = append(st.Notes,
		SocketUnit+" owns the agent socket and starts "+ServiceUnit+" on the first connection, so exactly one agent serves it",
		"at desktop login the autostart entry runs \"ncagent autostart session\": it hands the session's display to "+ServiceUnit+" (restarting it if it runs without one) so the agent shows its tray; only when "+SocketUnit+" is not active does it run the agent itself")
	if !reachable {
		st.Notes = append(st.Notes, detail+": in a desktop session without systemd the autostart entry runs the agent")
	}
	if !st.Enabled {
		st.Notes = append(st.Notes, "run ncagent autostart enable to start ncagent at login")
	}
	return st, nil
}
