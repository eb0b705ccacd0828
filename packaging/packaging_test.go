package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderEveryTemplate(t *testing.T) {
	d := Data{Executable: "/usr/bin/ncagent", LogPath: "/Users/u/Library/Logs/ncagent.log"}
	want := map[string][]string{
		ServiceTemplate: {"ExecStart=/usr/bin/ncagent run\n", "ConditionFileIsExecutable=/usr/bin/ncagent\n", "Restart=on-failure\n", "TimeoutStopSec=150\n", "Requires=ncagent.socket\n", "NoNewPrivileges=yes\n", "Also=ncagent.socket\n"},
		SocketTemplate:  {"ConditionFileIsExecutable=/usr/bin/ncagent\n", "ListenStream=%t/ncagent/agent.sock\n", "SocketMode=0600\n", "DirectoryMode=0700\n", "WantedBy=sockets.target\n"},
		AutostartTemplate: {"[Desktop Entry]\n", "Exec=/usr/bin/ncagent autostart session\n", "TryExec=/usr/bin/ncagent\n",
			"NoDisplay=true\n", "X-GNOME-Autostart-enabled=true\n"},
		LauncherTemplate:    {"Exec=/usr/bin/ncagent autostart session\n", "Categories=Network;Utility;\n", "Icon=ncagent\n"},
		LaunchAgentTemplate: {"<string>org.ncagent.agent</string>", "<string>/usr/bin/ncagent</string>", "<string>/Users/u/Library/Logs/ncagent.log</string>"},
	}
	if got := len(Templates()); got != len(want) {
		t.Fatalf("got %d templates, want %d", got, len(want))
	}
	for _, name := range Templates() {
		for _, managed := range []bool{false, true} {
			d.Managed = managed
			b, err := Render(name, d)
			if err != nil {
				t.Fatalf("Render(%s): %v", name, err)
			}
			for _, w := range want[name] {
				if !bytes.Contains(b, []byte(w)) {
					t.Errorf("%s (managed %v): missing %q in\n%s", name, managed, w, b)
				}
			}
			if got := isManaged(b); got != managed && name != LauncherTemplate {
				t.Errorf("%s: isManaged = %v, want %v", name, got, managed)
			}
			if name == LauncherTemplate && isManaged(b) {
				t.Errorf("the launcher is never managed by autostart, got marker in\n%s", b)
			}
			if name == AutostartTemplate && managed != bytes.Contains(b, []byte("X-Ncagent-Managed=true\n")) {
				t.Errorf("%s (managed %v): X-Ncagent-Managed key wrong in\n%s", name, managed, b)
			}
			if bytes.Contains(b, []byte("<no value>")) {
				t.Errorf("%s: unrendered field in\n%s", name, b)
			}
		}
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, template string
		d              Data
	}{
		{"relative executable", ServiceTemplate, Data{Executable: "ncagent"}},
		{"empty executable", SocketTemplate, Data{}},
		{"newline in path", AutostartTemplate, Data{Executable: "/usr/bin/nc\nExec=evil"}},
		{"plist without log path", LaunchAgentTemplate, Data{Executable: "/usr/bin/ncagent"}},
		{"unknown template", "nope.service", Data{Executable: "/usr/bin/ncagent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := Render(tt.template, tt.d); err == nil {
				t.Errorf("got no error and\n%s", b)
			}
		})
	}
}

// TestExecQuotingRoundTrip checks that odd paths survive the unit and
// desktop-entry quoting, as read back by Status.
func TestExecQuotingRoundTrip(t *testing.T) {
	paths := []string{
		"/usr/bin/ncagent",
		"/home/a b/bin/ncagent",
		"/opt/50%/ncagent",
		"/x/$HOME/ncagent",
		`/x/quo"te/ncagent`,
		`/x/back\slash/ncagent`,
		"/x/semi;colon/nc`agent",
		`C:\Program Files\ncagent\ncagent.exe`,
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			for _, c := range []struct {
				template string
				parse    func([]byte) string
			}{{ServiceTemplate, unitProgram}, {AutostartTemplate, desktopProgram}, {LauncherTemplate, desktopProgram}, {LaunchAgentTemplate, plistProgram}} {
				b, err := Render(c.template, Data{Executable: p, LogPath: "/tmp/log", Managed: true})
				if err != nil {
					t.Fatal(err)
				}
				if got := c.parse(b); got != p {
					t.Errorf("%s: got %q, want %q", c.template, got, p)
				}
			}
			// Windows file names cannot contain a double quote.
			if got := runProgram(runCommand(p)); got != p && !strings.Contains(p, `"`) {
				t.Errorf("run key: got %q, want %q", got, p)
			}
		})
	}
}

// fakeExecutable returns an executable path with a space and a percent
// sign in it, so the external validators see the quoting.
func fakeExecutable(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my apps 100%")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "ncagent")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// systemdVerify runs systemd-analyze verify on units in a user manager
// context; XDG_RUNTIME_DIR points at a temporary directory since --user
// needs one even without a running user manager.
func systemdVerify(t *testing.T, files ...string) (string, error) {
	t.Helper()
	rt := t.TempDir()
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--user", "--man=no"}, files...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt, "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not found: install the Debian package systemd to verify the units")
	}
	exe := fakeExecutable(t)
	for _, managed := range []bool{true, false} {
		dir := t.TempDir()
		var files []string
		for _, name := range []string{SocketTemplate, ServiceTemplate} {
			b, err := Render(name, Data{Executable: exe, Managed: managed})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
		out, err := systemdVerify(t, files...)
		if err != nil || out != "" {
			t.Errorf("systemd-analyze verify (managed %v): %v\n%s", managed, err, out)
		}
	}

	// The check itself must notice a broken unit: an unknown key is only a
	// warning (exit 0), so any output fails the test above.
	bad := filepath.Join(t.TempDir(), "ncagent.service")
	b, _ := Render(ServiceTemplate, Data{Executable: exe})
	os.WriteFile(bad, bytes.Replace(b, []byte("Restart=on-failure"), []byte("Restart=on-failure\nRestartt=always"), 1), 0o644)
	if out, _ := systemdVerify(t, bad); !strings.Contains(out, "Restartt") {
		t.Errorf("systemd-analyze did not report the unknown key: %q", out)
	}
}

func TestDesktopFileValidate(t *testing.T) {
	if _, err := exec.LookPath("desktop-file-validate"); err != nil {
		t.Skip("desktop-file-validate not found: install the Debian package desktop-file-utils")
	}
	exe := fakeExecutable(t)
	for _, name := range []string{AutostartTemplate, LauncherTemplate} {
		for _, managed := range []bool{true, false} {
			b, err := Render(name, Data{Executable: exe, Managed: managed})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "ncagent.desktop")
			os.WriteFile(p, b, 0o644)
			out, err := exec.Command("desktop-file-validate", p).CombinedOutput()
			if err != nil {
				t.Errorf("%s: desktop-file-validate: %v\n%s", name, err, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				switch {
				case l == "":
				case strings.Contains(l, ": hint: "):
					// Network and Utility are both main categories, as asked
					// for the menu; the validator hints it may show twice.
					if !strings.Contains(l, "more than one main category") {
						t.Errorf("%s: unexpected hint: %s", name, l)
					}
				default:
					t.Errorf("%s: %s", name, l)
				}
			}
		}
	}
}

func TestLaunchAgentPlistKeys(t *testing.T) {
	b, err := Render(LaunchAgentTemplate, Data{Executable: "/Applications/nc & co/ncagent", LogPath: "/Users/u/Library/Logs/ncagent.log", Managed: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseLaunchAgent(b)
	if err != nil {
		t.Fatalf("plist does not parse: %v\n%s", err, b)
	}
	if a.Label != LaunchAgentLabel {
		t.Errorf("Label: got %q, want %q", a.Label, LaunchAgentLabel)
	}
	if got, want := strings.Join(a.ProgramArguments, "|"), "/Applications/nc & co/ncagent|run"; got != want {
		t.Errorf("ProgramArguments: got %q, want %q", got, want)
	}
	if !a.RunAtLoad {
		t.Error("RunAtLoad: got false, want true")
	}
	if se, ok := a.KeepAlive["SuccessfulExit"]; !ok || se || len(a.KeepAlive) != 1 {
		t.Errorf("KeepAlive: got %v, want exactly SuccessfulExit=false (restart on crash only)", a.KeepAlive)
	}
	if a.StandardErrorPath != "/Users/u/Library/Logs/ncagent.log" || a.StandardOutPath != a.StandardErrorPath {
		t.Errorf("log paths: got %q and %q, want both /Users/u/Library/Logs/ncagent.log", a.StandardOutPath, a.StandardErrorPath)
	}
}
