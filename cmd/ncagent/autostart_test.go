package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/packaging"
)

// fakeSystemctl answers like a running systemd user manager in which
// ncagent.socket is enabled and active, and records every command.
type fakeSystemctl struct{ calls []string }

var _ packaging.Runner = (*fakeSystemctl)(nil)

func (f *fakeSystemctl) LookPath(file string) (string, error) {
	if file != "systemctl" {
		return "", exec.ErrNotFound
	}
	return "/usr/bin/systemctl", nil
}

func (f *fakeSystemctl) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	switch {
	case strings.Contains(line, " is-enabled "):
		return []byte("enabled\n"), nil
	case strings.Contains(line, " is-active "):
		return []byte("active\n"), nil
	case strings.Contains(line, "--property=MainPID"):
		return []byte("0\n"), nil
	}
	return nil, nil
}

// autostartFixture points the autostart verb at temporary HOME and
// XDG_CONFIG_HOME and a fake systemctl, and returns a runner of the verb.
func autostartFixture(t *testing.T, goos string) (home string, f *fakeSystemctl, runVerb func(args ...string) (code int, stdout, stderr string)) {
	t.Helper()
	home = t.TempDir()
	vars := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "cfg"), "DISPLAY": ":0"}
	f = &fakeSystemctl{}
	old := autostartEnv
	t.Cleanup(func() { autostartEnv = old })
	autostartEnv = func(e *env) (packaging.Env, error) {
		pe, err := packaging.NewEnv(e.getenv)
		pe.GOOS = goos
		pe.Runner = f
		return pe, err
	}
	runVerb = func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}
		code := run(context.Background(), e, append([]string{"autostart"}, args...))
		return code, out.String(), errOut.String()
	}
	return home, f, runVerb
}

func TestAutostartEnableStatusDisable(t *testing.T) {
	home, f, runVerb := autostartFixture(t, "linux")
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	files := []string{
		filepath.Join(home, "cfg/systemd/user/ncagent.service"),
		filepath.Join(home, "cfg/systemd/user/ncagent.socket"),
		filepath.Join(home, "cfg/autostart/ncagent.desktop"),
	}

	code, out, errOut := runVerb("enable", "--json")
	if code != exitOK {
		t.Fatalf("enable: exit %d, stderr %q", code, errOut)
	}
	var r packaging.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("enable --json: %v\n%s", err, out)
	}
	if !r.Changed || len(r.Actions) < 3 {
		t.Fatalf("enable report: %+v", r)
	}
	for i, p := range files {
		if a := r.Actions[i]; a.Op != packaging.OpWrite || a.Path != p {
			t.Errorf("action %d: got %s %s, want write %s", i, a.Op, a.Path, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".socket") {
			continue
		}
		if !strings.Contains(string(b), exe) {
			t.Errorf("%s does not start this binary %s:\n%s", p, exe, b)
		}
	}
	if !strings.Contains(strings.Join(f.calls, "\n"), "systemctl --user enable --now ncagent.socket") {
		t.Errorf("systemctl calls: %q", f.calls)
	}

	// Again, flags before the subcommand: nothing changes.
	code, out, _ = runVerb("enable")
	if code != exitOK || !strings.Contains(out, "autostart is already enabled: nothing changed") {
		t.Errorf("second enable: exit %d, stdout %q", code, out)
	}

	code, out, _ = runVerb("--json", "status")
	var st packaging.State
	if err := json.Unmarshal([]byte(out), &st); code != exitOK || err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if !st.Enabled || st.Executable != exe || len(st.Entries) != 3 || st.Manager == nil || !st.Manager.Available {
		t.Errorf("status: %+v", st)
	}
	code, out, _ = runVerb("status")
	for _, want := range []string{"autostart: enabled (systemd-socket+xdg-autostart)", "starts this binary", "ncagent.socket: enabled, active", "note: ncagent.socket owns the agent socket"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runVerb("disable", "--dry-run")
	if code != exitOK || !strings.Contains(out, "would remove "+files[0]) || !strings.Contains(out, "dry run: nothing changed") {
		t.Errorf("disable --dry-run: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Errorf("dry run removed %s", files[0])
	}
	code, out, _ = runVerb("disable")
	if code != exitOK {
		t.Fatalf("disable: exit %d", code)
	}
	for _, p := range files {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after disable:\n%s", p, out)
		}
	}
	code, out, _ = runVerb("disable")
	if code != exitOK || !strings.Contains(out, "autostart was not enabled: nothing removed") {
		t.Errorf("second disable: exit %d, stdout %q", code, out)
	}
}

func TestAutostartSessionHandsDisplayToService(t *testing.T) {
	_, f, runVerb := autostartFixture(t, "linux")
	code, out, errOut := runVerb("session")
	if code != exitOK || !strings.Contains(out, "started ncagent.service") {
		t.Errorf("session: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := []string{"systemctl --user import-environment DISPLAY", "systemctl --user start ncagent.service"}
	joined := strings.Join(f.calls, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("calls lack %q: %q", w, f.calls)
		}
	}
}

func TestAutostartUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{"help", []string{"--help"}, exitOK, "", "Usage: ncagent autostart [flags] enable|disable|status|session"},
		{"help after subcommand", []string{"status", "--help"}, exitOK, "", "-dry-run"},
		{"no subcommand", nil, exitUsage, "ncagent: autostart needs a command", ""},
		{"unknown subcommand", []string{"start"}, exitUsage, `ncagent: autostart: unknown command "start"`, ""},
		{"extra argument", []string{"enable", "now"}, exitUsage, `unexpected argument "now"`, ""},
		{"bad flag", []string{"enable", "--force"}, exitUsage, "flag provided but not defined: -force", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, runVerb := autostartFixture(t, "linux")
			code, out, errOut := runVerb(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit: got %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(errOut, tt.wantStderr) || !strings.Contains(out, tt.wantStdout) {
				t.Errorf("got stdout %q stderr %q, want stdout containing %q and stderr containing %q", out, errOut, tt.wantStdout, tt.wantStderr)
			}
		})
	}

	// ncagent help autostart shows the same usage.
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"help", "autostart"}); code != exitOK || !strings.Contains(out.String(), "exactly one agent") {
		t.Errorf("help autostart: exit %d\n%s", code, out.String())
	}
}

func TestAutostartUnsupportedPlatform(t *testing.T) {
	_, _, runVerb := autostartFixture(t, "plan9")
	code, _, errOut := runVerb("status")
	if code != exitError || !strings.HasPrefix(errOut, "ncagent: autostart: not supported on this platform (plan9): start ncagent run") {
		t.Errorf("got exit %d, stderr %q", code, errOut)
	}
}
