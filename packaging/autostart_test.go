package packaging

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeRunner records commands and answers them from tables.
type fakeRunner struct {
	missing map[string]bool   // commands LookPath does not find
	fail    map[string]string // command line -> output of a failing run
	out     map[string]string // command line -> output of a successful run
	hooks   map[string]func() // command line -> side effect (e.g. systemctl's symlink)
	calls   []string          // every Run, in order
}

var _ Runner = (*fakeRunner)(nil)

func (f *fakeRunner) LookPath(file string) (string, error) {
	if f.missing[file] {
		return "", exec.ErrNotFound
	}
	return "/usr/bin/" + file, nil
}

func (f *fakeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, line)
	if h := f.hooks[line]; h != nil {
		h()
	}
	if o, ok := f.fail[line]; ok {
		return []byte(o), errors.New("exit status 1")
	}
	return []byte(f.out[line]), nil
}

// changing returns the calls that change state (not queries).
func (f *fakeRunner) changing() []string {
	var c []string
	for _, l := range f.calls {
		if strings.Contains(l, " show ") || strings.Contains(l, " is-") || strings.HasPrefix(l, "launchctl print") {
			continue
		}
		c = append(c, l)
	}
	return c
}

const testExe = "/opt/ncagent/bin/ncagent"

func newTestEnv(t *testing.T, goos string, r Runner) Env {
	t.Helper()
	home := t.TempDir()
	return Env{GOOS: goos, Home: home, ConfigHome: filepath.Join(home, "xdg-config"), Executable: testExe, UID: 501, Runner: r}
}

func ops(r Report) []string {
	var s []string
	for _, a := range r.Actions {
		s = append(s, string(a.Op)+" "+a.Path+strings.Join(a.Command, " "))
	}
	return s
}

// noManager is a runner like a container: systemctl exists, no user manager.
func noManager(env *Env) *fakeRunner {
	f := &fakeRunner{fail: map[string]string{
		"systemctl --user show --property=Version": "Failed to connect to bus: No medium found",
	}}
	f.hooks = map[string]func(){
		// Like systemctl, create the enablement symlink offline.
		"systemctl --user enable ncagent.socket": func() {
			l := wantsLink(*env)
			os.MkdirAll(filepath.Dir(l), 0o755)
			os.Symlink(filepath.Join(unitDir(*env), SocketUnit), l)
		},
	}
	return f
}

// withManager is a runner whose user manager reports the socket enabled
// and active once `enable --now` ran.
func withManager() *fakeRunner {
	f := &fakeRunner{out: map[string]string{"systemctl --user show --property=Version": "Version=252"}}
	f.hooks = map[string]func(){
		"systemctl --user enable --now ncagent.socket": func() {
			f.out["systemctl --user is-enabled ncagent.socket"] = "enabled\n"
			f.out["systemctl --user is-active ncagent.socket"] = "active\n"
		},
	}
	return f
}

func TestSystemdEnableWritesExactFiles(t *testing.T) {
	tests := []struct {
		name         string
		runner       func(env *Env) *fakeRunner
		wantChanging []string
		wantSkip     string
	}{
		{
			name:   "user manager running",
			runner: func(*Env) *fakeRunner { return withManager() },
			wantChanging: []string{
				"systemctl --user daemon-reload",
				"systemctl --user enable --now ncagent.socket",
				"systemctl --user try-restart ncagent.service",
			},
		},
		{
			name:         "container without user manager",
			runner:       noManager,
			wantChanging: []string{"systemctl --user enable ncagent.socket"},
			wantSkip:     "no systemd user manager (Failed to connect to bus: No medium found)",
		},
		{
			name:     "no systemctl",
			runner:   func(*Env) *fakeRunner { return &fakeRunner{missing: map[string]bool{"systemctl": true}} },
			wantSkip: "systemctl not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, "linux", nil)
			f := tt.runner(&env)
			env.Runner = f
			r, err := Enable(context.Background(), env, false)
			if err != nil {
				t.Fatalf("Enable: %v (report %v)", err, ops(r))
			}
			if !r.Changed {
				t.Error("first enable: Changed = false")
			}
			wantFiles := map[string]string{
				filepath.Join(env.ConfigHome, "systemd/user/ncagent.service"): ServiceTemplate,
				filepath.Join(env.ConfigHome, "systemd/user/ncagent.socket"):  SocketTemplate,
				filepath.Join(env.ConfigHome, "autostart/ncagent.desktop"):    AutostartTemplate,
			}
			for p, tmpl := range wantFiles {
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
				want, _ := Render(tmpl, Data{Executable: testExe, Managed: true})
				if string(got) != string(want) {
					t.Errorf("%s: got\n%s\nwant\n%s", p, got, want)
				}
				fi, _ := os.Stat(p)
				if fi.Mode() != 0o644 {
					t.Errorf("%s: got mode %v, want 0644", p, fi.Mode())
				}
				if d, _ := os.Stat(filepath.Dir(p)); d.Mode().Perm()&0o022 != 0 {
					t.Errorf("%s: directory writable by others: %v", filepath.Dir(p), d.Mode())
				}
			}
			// Nothing else was written (no stray temporary files).
			var all []string
			filepath.WalkDir(env.Home, func(p string, d fs.DirEntry, err error) error {
				if d != nil && !d.IsDir() {
					all = append(all, p)
				}
				return nil
			})
			wantN := len(wantFiles)
			if isLink(wantsLink(env)) {
				wantN++
			}
			if len(all) != wantN {
				t.Errorf("files under home: got %q, want the %d expected", all, wantN)
			}
			if got := f.changing(); !reflect.DeepEqual(got, tt.wantChanging) {
				t.Errorf("commands: got %q, want %q", got, tt.wantChanging)
			}
			if tt.wantSkip != "" {
				found := false
				for _, a := range r.Actions {
					found = found || (a.Op == OpSkip && strings.HasPrefix(a.Detail, tt.wantSkip))
				}
				if !found {
					t.Errorf("no skip saying %q in %q", tt.wantSkip, r.Lines())
				}
			}

			// Enable again: nothing changes, nothing state-changing runs.
			f.calls = nil
			r, err = Enable(context.Background(), env, false)
			if err != nil {
				t.Fatalf("second Enable: %v", err)
			}
			if r.Changed {
				t.Errorf("second enable changed something: %q", r.Lines())
			}
			if got := f.changing(); len(got) != 0 {
				t.Errorf("second enable ran %q, want nothing", got)
			}

			st, err := Status(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "no systemctl" && !st.Enabled {
				t.Errorf("status after enable: Enabled false, notes %q", st.Notes)
			}
			for _, e := range st.Entries {
				if !e.Installed || !e.Managed || !e.UpToDate || !e.Current {
					t.Errorf("status entry %+v, want installed, managed, up to date, current", e)
				}
			}
		})
	}
}

func TestSystemdDryRunWritesNothing(t *testing.T) {
	env := newTestEnv(t, "linux", nil)
	f := withManager()
	env.Runner = f
	r, err := Enable(context.Background(), env, true)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Changed || !r.DryRun {
		t.Errorf("dry run report: Changed %v DryRun %v, want both true", r.Changed, r.DryRun)
	}
	if _, err := os.Stat(env.ConfigHome); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run created %s (err %v)", env.ConfigHome, err)
	}
	if got := f.changing(); len(got) != 0 {
		t.Errorf("dry run ran %q", got)
	}
	if l := r.Lines(); !strings.HasPrefix(l[0], "would write ") {
		t.Errorf("got %q, want a would-write line first", l[0])
	}
}

func TestSystemdDisableLeavesHandWrittenAlone(t *testing.T) {
	env := newTestEnv(t, "linux", nil)
	f := withManager()
	env.Runner = f
	hand := filepath.Join(env.ConfigHome, "autostart", "ncagent.desktop")
	handContent := "[Desktop Entry]\nType=Application\nName=my ncagent\nExec=/usr/local/bin/ncagent run\n"
	os.MkdirAll(filepath.Dir(hand), 0o700)
	if err := os.WriteFile(hand, []byte(handContent), 0o600); err != nil {
		t.Fatal(err)
	}

	r, err := Enable(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := ops(r)[2]; got != "keep "+hand {
		t.Errorf("enable on a hand-written entry: got %q, want keep", got)
	}
	st, _ := Status(context.Background(), env)
	if e := st.Entries[2]; !e.Installed || e.Managed || e.Executable != "/usr/local/bin/ncagent" || e.Current {
		t.Errorf("status of hand-written entry: got %+v", e)
	}

	f.calls = nil
	r, err = Disable(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"run systemctl --user disable --now ncagent.socket ncagent.service",
		"remove " + filepath.Join(env.ConfigHome, "systemd/user/ncagent.service"),
		"remove " + filepath.Join(env.ConfigHome, "systemd/user/ncagent.socket"),
		"keep " + hand,
		"run systemctl --user daemon-reload",
	}
	if got := ops(r); !reflect.DeepEqual(got, want) {
		t.Errorf("disable: got %q, want %q", got, want)
	}
	got, err := os.ReadFile(hand)
	if err != nil || string(got) != handContent {
		t.Errorf("hand-written file: got %q (err %v), want it untouched", got, err)
	}
	for _, u := range []string{ServiceUnit, SocketUnit} {
		if _, err := os.Stat(filepath.Join(unitDir(env), u)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after disable (err %v)", u, err)
		}
	}

	// Disable again: nothing to do.
	r, _ = Disable(context.Background(), env, false)
	if r.Changed {
		t.Errorf("second disable changed something: %q", r.Lines())
	}
}

func TestSystemdDisableOfflineRemovesEnablementLink(t *testing.T) {
	env := newTestEnv(t, "linux", nil)
	f := noManager(&env)
	f.hooks["systemctl --user disable ncagent.socket ncagent.service"] = func() { os.Remove(wantsLink(env)) }
	env.Runner = f
	if _, err := Enable(context.Background(), env, false); err != nil {
		t.Fatal(err)
	}
	if !isLink(wantsLink(env)) {
		t.Fatal("enable did not enable the socket offline")
	}
	if _, err := Disable(context.Background(), env, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(wantsLink(env)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("enablement link left behind (err %v)", err)
	}
	entries, _ := os.ReadDir(unitDir(env))
	for _, e := range entries {
		if !e.IsDir() {
			t.Errorf("left in unit dir: %s", e.Name())
		}
	}
}

func TestStatusDetectsOtherBinary(t *testing.T) {
	env := newTestEnv(t, "linux", nil)
	f := withManager()
	env.Runner = f
	env.Executable = "/old/place/ncagent"
	if _, err := Enable(context.Background(), env, false); err != nil {
		t.Fatal(err)
	}
	env.Executable = testExe
	st, err := Status(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enabled {
		t.Error("Enabled = true for units starting another binary")
	}
	for _, e := range st.Entries {
		if e.Kind == "systemd-socket" {
			// It starts no program, but its ConditionFileIsExecutable=
			// names the old binary: rewritten by the next enable.
			if !e.Current || e.UpToDate {
				t.Errorf("socket unit: got %+v, want current (no program) and not up to date", e)
			}
			continue
		}
		if e.Current || e.Executable != "/old/place/ncagent" || e.UpToDate {
			t.Errorf("%s: got %+v, want Executable /old/place/ncagent, not current", e.Kind, e)
		}
	}
	if !strings.Contains(strings.Join(st.Notes, "\n"), "starts /old/place/ncagent, not this binary") {
		t.Errorf("notes do not explain: %q", st.Notes)
	}

	// Enable points them here and restarts a running service.
	f.calls = nil
	r, err := Enable(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.Actions[0].Op != OpUpdate || !strings.Contains(r.Actions[0].Detail, "/old/place/ncagent") {
		t.Errorf("got %+v, want an update naming the old binary", r.Actions[0])
	}
	if got := f.changing(); !reflect.DeepEqual(got, []string{"systemctl --user daemon-reload", "systemctl --user enable --now ncagent.socket", "systemctl --user try-restart ncagent.service"}) {
		t.Errorf("commands: got %q", got)
	}
}

func TestLaunchdEnableDisable(t *testing.T) {
	env := newTestEnv(t, "darwin", nil)
	f := &fakeRunner{fail: map[string]string{"launchctl print gui/501/org.ncagent.agent": "Could not find service"}}
	plistPath := filepath.Join(env.Home, "Library/LaunchAgents/org.ncagent.agent.plist")
	f.hooks = map[string]func(){
		"launchctl bootstrap gui/501 " + plistPath: func() { delete(f.fail, "launchctl print gui/501/org.ncagent.agent") },
	}
	env.Runner = f
	r, err := Enable(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ops(r), []string{"write " + plistPath, "run launchctl bootstrap gui/501 " + plistPath}; !reflect.DeepEqual(got, want) {
		t.Errorf("enable: got %q, want %q", got, want)
	}
	b, err := os.ReadFile(plistPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseLaunchAgent(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(env.Home, "Library/Logs/ncagent.log"); a.StandardErrorPath != want {
		t.Errorf("StandardErrorPath: got %q, want %q", a.StandardErrorPath, want)
	}
	if got := strings.Join(a.ProgramArguments, " "); got != testExe+" run" {
		t.Errorf("ProgramArguments: got %q", got)
	}
	if fi, _ := os.Stat(plistPath); fi.Mode() != 0o644 {
		t.Errorf("mode: got %v, want 0644", fi.Mode())
	}

	r, _ = Enable(context.Background(), env, false)
	if r.Changed {
		t.Errorf("second enable: %q", r.Lines())
	}
	st, _ := Status(context.Background(), env)
	if !st.Enabled || st.Manager.Units[0].Active != "loaded" {
		t.Errorf("status: got %+v", st)
	}

	r, err = Disable(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ops(r), []string{"run launchctl bootout gui/501/org.ncagent.agent", "remove " + plistPath}; !reflect.DeepEqual(got, want) {
		t.Errorf("disable: got %q, want %q", got, want)
	}
	if _, err := os.Stat(plistPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("plist left behind (err %v)", err)
	}
}

// fakeRegistry is HKCU in memory.
type fakeRegistry map[string]string

var _ regStore = fakeRegistry(nil)

func (r fakeRegistry) get(key, name string) (string, bool, error) {
	v, ok := r[key+`\`+name]
	return v, ok, nil
}
func (r fakeRegistry) set(key, name, value string) error { r[key+`\`+name] = value; return nil }
func (r fakeRegistry) del(key, name string) error        { delete(r, key+`\`+name); return nil }

func TestRegistryRunKey(t *testing.T) {
	const exe = `C:\Users\u\AppData\Local\ncagent\ncagent.exe`
	want := `"` + exe + `" run`
	tests := []struct {
		name         string
		before       fakeRegistry
		enableOp     Op
		disableOp    Op
		afterEnable  fakeRegistry
		afterDisable fakeRegistry
	}{
		{
			name: "fresh", before: fakeRegistry{}, enableOp: OpWrite, disableOp: OpRemove,
			afterEnable:  fakeRegistry{RunKey + `\ncagent`: want, markerKey + `\AutostartRun`: want},
			afterDisable: fakeRegistry{},
		},
		{
			name:     "other binary of ours",
			before:   fakeRegistry{RunKey + `\ncagent`: `"C:\old\ncagent.exe" run`, markerKey + `\AutostartRun`: `"C:\old\ncagent.exe" run`},
			enableOp: OpUpdate, disableOp: OpRemove,
			afterEnable:  fakeRegistry{RunKey + `\ncagent`: want, markerKey + `\AutostartRun`: want},
			afterDisable: fakeRegistry{},
		},
		{
			name:     "written by hand",
			before:   fakeRegistry{RunKey + `\ncagent`: `C:\tools\ncagent.exe run --verbose`},
			enableOp: OpKeep, disableOp: OpKeep,
			afterEnable:  fakeRegistry{RunKey + `\ncagent`: `C:\tools\ncagent.exe run --verbose`},
			afterDisable: fakeRegistry{RunKey + `\ncagent`: `C:\tools\ncagent.exe run --verbose`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := Env{GOOS: "windows", Executable: exe, Runner: &fakeRunner{}, registry: tt.before}
			r, err := Enable(context.Background(), env, false)
			if err != nil || r.Actions[0].Op != tt.enableOp {
				t.Fatalf("enable: got %q (err %v), want %s", ops(r), err, tt.enableOp)
			}
			if !reflect.DeepEqual(tt.before, tt.afterEnable) {
				t.Errorf("after enable: got %q, want %q", tt.before, tt.afterEnable)
			}
			if r, _ := Enable(context.Background(), env, false); r.Changed {
				t.Errorf("second enable changed: %q", r.Lines())
			}
			r, err = Disable(context.Background(), env, false)
			if err != nil || r.Actions[0].Op != tt.disableOp {
				t.Fatalf("disable: got %q (err %v), want %s", ops(r), err, tt.disableOp)
			}
			if !reflect.DeepEqual(tt.before, tt.afterDisable) {
				t.Errorf("after disable: got %q, want %q", tt.before, tt.afterDisable)
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	tests := []struct{ name, goos string }{{"plan9", "plan9"}, {"freebsd", "freebsd"}}
	if _, err := openRegistry(); err != nil {
		tests = append(tests, struct{ name, goos string }{"windows without a registry", "windows"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, tt.goos, &fakeRunner{})
			if _, err := Status(context.Background(), env); !errors.Is(err, ErrUnsupported) {
				t.Errorf("Status: got %v, want ErrUnsupported", err)
			}
			if _, err := Enable(context.Background(), env, false); !errors.Is(err, ErrUnsupported) {
				t.Errorf("Enable: got %v, want ErrUnsupported", err)
			}
		})
	}
}

func TestNewEnvIgnoresRelativeConfigHome(t *testing.T) {
	for _, tt := range []struct{ xdg, want string }{{"rel/dir", "/h/.config"}, {"", "/h/.config"}, {"/abs/cfg", "/abs/cfg"}} {
		env, err := NewEnv(func(k string) string {
			return map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": tt.xdg}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := env.configHome(); got != tt.want {
			t.Errorf("XDG_CONFIG_HOME=%q: got %q, want %q", tt.xdg, got, tt.want)
		}
	}
}

func TestSession(t *testing.T) {
	const active = "systemctl --user is-active --quiet ncagent.socket"
	const mainPID = "systemctl --user show --property=MainPID --value ncagent.service"
	tests := []struct {
		name        string
		missing     bool
		fail        map[string]string
		out         map[string]string
		session     map[string]string
		agentEnv    string // /proc/4242/environ
		want        SessionAction
		wantCommand string // the last state-changing command
	}{
		{name: "no systemctl", missing: true, want: SessionRunHere},
		{name: "socket not active", fail: map[string]string{active: "inactive"}, want: SessionRunHere},
		{name: "service not running", out: map[string]string{mainPID: "0\n"}, session: map[string]string{"DISPLAY": ":0"},
			want: SessionStarted, wantCommand: "systemctl --user start ncagent.service"},
		{name: "agent without display", out: map[string]string{mainPID: "4242\n"}, session: map[string]string{"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"},
			agentEnv: "HOME=/h\x00PATH=/bin\x00", want: SessionRestarted, wantCommand: "systemctl --user restart ncagent.service"},
		{name: "agent on another display", out: map[string]string{mainPID: "4242\n"}, session: map[string]string{"DISPLAY": ":1"},
			agentEnv: "DISPLAY=:0\x00", want: SessionRestarted, wantCommand: "systemctl --user restart ncagent.service"},
		{name: "agent has this display", out: map[string]string{mainPID: "4242\n"}, session: map[string]string{"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"},
			agentEnv: "WAYLAND_DISPLAY=wayland-0\x00DISPLAY=:0\x00", want: SessionAlready},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{fail: tt.fail, out: tt.out}
			if tt.missing {
				f.missing = map[string]bool{"systemctl": true}
			}
			proc := t.TempDir()
			if tt.agentEnv != "" {
				os.MkdirAll(filepath.Join(proc, "4242"), 0o755)
				os.WriteFile(filepath.Join(proc, "4242", "environ"), []byte(tt.agentEnv), 0o600)
			}
			env := Env{GOOS: "linux", Runner: f, ProcDir: proc, Getenv: func(k string) string { return tt.session[k] }}
			res, err := Session(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Action != tt.want {
				t.Errorf("got %s (%s), want %s", res.Action, res.Detail, tt.want)
			}
			var last string
			for _, c := range f.calls {
				if strings.Contains(c, " start ") || strings.Contains(c, " restart ") {
					last = c
				}
				if strings.Contains(c, "import-environment") {
					for _, v := range strings.Fields(c)[3:] {
						if tt.session[v] == "" {
							t.Errorf("imported unset variable %s", v)
						}
					}
				}
			}
			if last != tt.wantCommand {
				t.Errorf("command: got %q, want %q", last, tt.wantCommand)
			}
			if tt.want != SessionRunHere && len(tt.session) > 0 && !strings.Contains(strings.Join(f.calls, "\n"), "import-environment") {
				t.Errorf("display not imported: %q", f.calls)
			}
		})
	}
}

// TestRealSystemctlOffline runs the real systemctl where no user manager
// answers (a container, CI): enable must leave the socket enabled for the
// next login, disable must undo it.
func TestRealSystemctlOffline(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("systemctl not found")
	}
	if exec.Command("systemctl", "--user", "show", "--property=Version").Run() == nil {
		t.Skip("a systemd user manager is running: not touching it from a test")
	}
	env := newTestEnv(t, "linux", ExecRunner{})
	t.Setenv("XDG_CONFIG_HOME", env.ConfigHome) // systemctl reads it
	r, err := Enable(context.Background(), env, false)
	if err != nil {
		t.Fatalf("enable: %v\n%s", err, strings.Join(r.Lines(), "\n"))
	}
	if !isLink(wantsLink(env)) {
		t.Fatalf("systemctl did not enable the socket: %q", r.Lines())
	}
	st, err := Status(context.Background(), env)
	if err != nil || !st.Enabled {
		t.Errorf("status: %+v (err %v)", st, err)
	}
	if r, _ := Enable(context.Background(), env, false); r.Changed {
		t.Errorf("second enable changed: %q", r.Lines())
	}
	if r, err := Disable(context.Background(), env, false); err != nil {
		t.Fatalf("disable: %v\n%s", err, strings.Join(r.Lines(), "\n"))
	}
	if _, err := os.Lstat(wantsLink(env)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("enablement link left (err %v)", err)
	}
}
