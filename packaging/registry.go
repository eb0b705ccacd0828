package packaging

import (
	"context"
	"fmt"
	"strings"
)

// The Windows Run key and the value ncagent writes there.
const (
	RunKey   = `Software\Microsoft\Windows\CurrentVersion\Run`
	RunValue = "ncagent"
	// markerKey and markerValue record the command ncagent wrote under
	// RunValue: a Run value equal to it is ours, any other was written by
	// hand. (A REG_SZ value has no room for a marker comment.)
	markerKey   = `Software\ncagent`
	markerValue = "AutostartRun"
)

// regStore is the part of HKEY_CURRENT_USER the Windows backend uses.
type regStore interface {
	// get returns the string value name under key and whether it exists.
	get(key, name string) (string, bool, error)
	set(key, name, value string) error
	// del deletes a value; a missing value is not an error.
	del(key, name string) error
}

// registryBackend writes the HKCU Run value (Windows).
type registryBackend struct{}

// runCommand is the Run value for exe: the quoted path and the run verb.
func runCommand(exe string) string { return `"` + exe + `" run` }

// runProgram returns the program of a Run value.
func runProgram(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		if end := strings.IndexByte(v[1:], '"'); end >= 0 {
			return v[1 : 1+end]
		}
		return v[1:]
	}
	if f := strings.Fields(v); len(f) > 0 {
		return f[0]
	}
	return ""
}

func (registryBackend) store(env Env) (regStore, error) {
	if env.registry != nil {
		return env.registry, nil
	}
	return openRegistry()
}

const runPath = `HKCU\` + RunKey + `\` + RunValue

func (b registryBackend) inspect(env Env) (Entry, regStore, error) {
	e := Entry{Kind: "windows-run-key", Path: runPath}
	s, err := b.store(env)
	if err != nil {
		return e, nil, err
	}
	cur, ok, err := s.get(RunKey, RunValue)
	if err != nil {
		return e, nil, fmt.Errorf("autostart: read %s: %w", runPath, err)
	}
	if !ok {
		return e, s, nil
	}
	marker, _, err := s.get(markerKey, markerValue)
	if err != nil {
		return e, nil, fmt.Errorf(`autostart: read HKCU\%s\%s: %w`, markerKey, markerValue, err)
	}
	e.Installed = true
	e.Managed = marker == cur
	e.UpToDate = cur == runCommand(env.Executable)
	e.Executable = runProgram(cur)
	e.Current = strings.EqualFold(e.Executable, env.Executable)
	return e, s, nil
}

func (b registryBackend) enable(ctx context.Context, env Env, r *Report) error {
	e, s, err := b.inspect(env)
	if err != nil {
		return err
	}
	switch {
	case !e.Installed:
		r.add(Action{Op: OpWrite, Path: runPath})
	case !e.Managed:
		r.add(Action{Op: OpKeep, Path: runPath, Detail: "ncagent did not write it; delete it and run ncagent autostart enable again to replace it"})
		return nil
	case e.UpToDate:
		r.add(Action{Op: OpUnchanged, Path: runPath})
		return nil
	default:
		r.add(Action{Op: OpUpdate, Path: runPath, Detail: "it started " + e.Executable})
	}
	if r.DryRun {
		return nil
	}
	want := runCommand(env.Executable)
	// The marker first: a crash between the two writes leaves a marker
	// without a Run value, which enable and disable both handle.
	if err := s.set(markerKey, markerValue, want); err != nil {
		return fmt.Errorf(`autostart: write HKCU\%s\%s: %w`, markerKey, markerValue, err)
	}
	if err := s.set(RunKey, RunValue, want); err != nil {
		return fmt.Errorf("autostart: write %s: %w", runPath, err)
	}
	return nil
}

func (b registryBackend) disable(ctx context.Context, env Env, r *Report) error {
	e, s, err := b.inspect(env)
	if err != nil {
		return err
	}
	switch {
	case !e.Installed:
		r.add(Action{Op: OpAbsent, Path: runPath})
	case !e.Managed:
		r.add(Action{Op: OpKeep, Path: runPath, Detail: "ncagent did not write it; delete it yourself if you no longer want it"})
		return nil
	default:
		r.add(Action{Op: OpRemove, Path: runPath})
		if r.DryRun {
			return nil
		}
		if err := s.del(RunKey, RunValue); err != nil {
			return fmt.Errorf("autostart: delete %s: %w", runPath, err)
		}
	}
	if r.DryRun {
		return nil
	}
	if err := s.del(markerKey, markerValue); err != nil {
		return fmt.Errorf(`autostart: delete HKCU\%s\%s: %w`, markerKey, markerValue, err)
	}
	return nil
}

func (b registryBackend) status(ctx context.Context, env Env) (State, error) {
	st := State{Platform: env.GOOS, Mechanism: "windows-run-key", Executable: env.Executable}
	e, _, err := b.inspect(env)
	if err != nil {
		return st, err
	}
	st.Entries = []Entry{e}
	st.Enabled = e.Installed && e.Current
	switch {
	case !e.Installed:
		st.Notes = append(st.Notes, "run ncagent autostart enable to start ncagent at login")
	case !e.Managed:
		st.Notes = append(st.Notes, runPath+" was not written by ncagent autostart: it is left alone")
	case !e.Current:
		st.Notes = append(st.Notes, fmt.Sprintf("%s starts %s, not this binary: run ncagent autostart enable to point it here", runPath, e.Executable))
	}
	return st, nil
}
