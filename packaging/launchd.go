package packaging

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"howett.net/plist"
)

// launchdBackend writes the LaunchAgent (macOS).
type launchdBackend struct{}

func launchAgentPath(env Env) string {
	return filepath.Join(env.Home, "Library", "LaunchAgents", LaunchAgentLabel+".plist")
}

// LaunchAgentLogPath is where the LaunchAgent sends the agent's output.
func launchAgentLogPath(env Env) string {
	return filepath.Join(env.Home, "Library", "Logs", "ncagent.log")
}

func (launchdBackend) file(env Env) (fileSpec, error) {
	b, err := Render(LaunchAgentTemplate, Data{Executable: env.Executable, Managed: true, LogPath: launchAgentLogPath(env)})
	return fileSpec{kind: "launchd-agent", path: launchAgentPath(env), content: b, program: plistProgram}, err
}

// LaunchAgent is the part of a LaunchAgent property list ncagent reads.
type LaunchAgent struct {
	Label             string          `plist:"Label"`
	ProgramArguments  []string        `plist:"ProgramArguments"`
	RunAtLoad         bool            `plist:"RunAtLoad"`
	KeepAlive         map[string]bool `plist:"KeepAlive"`
	StandardOutPath   string          `plist:"StandardOutPath"`
	StandardErrorPath string          `plist:"StandardErrorPath"`
}

// ParseLaunchAgent decodes a LaunchAgent property list.
func ParseLaunchAgent(content []byte) (LaunchAgent, error) {
	var a LaunchAgent
	if _, err := plist.Unmarshal(content, &a); err != nil {
		return a, fmt.Errorf("parse launch agent: %w", err)
	}
	return a, nil
}

// plistProgram returns ProgramArguments[0] of any property list (a
// hand-written one may use other types for the keys LaunchAgent decodes).
func plistProgram(content []byte) string {
	var a struct {
		ProgramArguments []string `plist:"ProgramArguments"`
	}
	if _, err := plist.Unmarshal(content, &a); err != nil || len(a.ProgramArguments) == 0 {
		return ""
	}
	return a.ProgramArguments[0]
}

func (launchdBackend) domain(env Env) string   { return "gui/" + strconv.Itoa(env.UID) }
func (b launchdBackend) target(env Env) string { return b.domain(env) + "/" + LaunchAgentLabel }

// loaded reports whether launchctl exists and whether the job is loaded.
func (b launchdBackend) loaded(ctx context.Context, env Env) (haveLaunchctl, loaded bool) {
	if _, err := env.Runner.LookPath("launchctl"); err != nil {
		return false, false
	}
	_, err := env.Runner.Run(ctx, "launchctl", "print", b.target(env))
	return true, err == nil
}

func (b launchdBackend) enable(ctx context.Context, env Env, r *Report) error {
	f, err := b.file(env)
	if err != nil {
		return err
	}
	changed, err := f.write(env, r)
	if err != nil {
		return err
	}
	have, loaded := b.loaded(ctx, env)
	bootstrap := []string{"launchctl", "bootstrap", b.domain(env), f.path}
	if !have {
		r.add(Action{Op: OpSkip, Command: bootstrap, Detail: "launchctl not found: the agent starts at your next login"})
		return nil
	}
	if loaded && !changed {
		return nil
	}
	if loaded {
		// launchd keeps the old definition until the job is booted out.
		if err := run(ctx, env, r, []string{"launchctl", "bootout", b.target(env)}); err != nil {
			return err
		}
	}
	return run(ctx, env, r, bootstrap)
}

func (b launchdBackend) disable(ctx context.Context, env Env, r *Report) error {
	f, err := b.file(env)
	if err != nil {
		return err
	}
	e, _, err := f.inspect(env)
	if err != nil {
		return err
	}
	if e.Installed && e.Managed {
		if _, loaded := b.loaded(ctx, env); loaded {
			if err := run(ctx, env, r, []string{"launchctl", "bootout", b.target(env)}); err != nil {
				return err
			}
		}
	}
	_, err = f.remove(env, r)
	return err
}

func (b launchdBackend) status(ctx context.Context, env Env) (State, error) {
	st := State{Platform: env.GOOS, Mechanism: "launchd", Executable: env.Executable}
	f, err := b.file(env)
	if err != nil {
		return st, err
	}
	e, _, err := f.inspect(env)
	if err != nil {
		return st, err
	}
	st.Entries = []Entry{e}
	st.Enabled = e.Installed && e.Current
	have, loaded := b.loaded(ctx, env)
	m := &Manager{Name: "launchd", Available: have}
	if !have {
		m.Detail = "launchctl not found"
	} else {
		state := "not-loaded"
		if loaded {
			state = "loaded"
		}
		m.Units = []UnitState{{Name: b.target(env), Active: state}}
	}
	st.Manager = m
	switch {
	case !e.Installed:
		st.Notes = append(st.Notes, "run ncagent autostart enable to start ncagent at login")
	case !e.Managed:
		st.Notes = append(st.Notes, fmt.Sprintf("%s was written by hand (no %q marker): ncagent autostart leaves it alone", e.Path, ManagedMarker))
	case !e.Current:
		st.Notes = append(st.Notes, fmt.Sprintf("%s starts %s, not this binary: run ncagent autostart enable to point it here", e.Path, e.Executable))
	}
	if e.Installed {
		st.Notes = append(st.Notes, "launchd starts the agent at login and restarts it only when it crashes; its output goes to "+launchAgentLogPath(env))
	}
	return st, nil
}
