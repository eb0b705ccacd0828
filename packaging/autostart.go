package packaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/atomicfile"
)

// Env is everything the autostart functions read from the outside world.
// Tests point it at temporary directories and a fake Runner; NewEnv fills it
// from the running process.
type Env struct {
	// GOOS selects the mechanism: "linux" (systemd units and XDG
	// autostart), "darwin" (launchd) or "windows" (the Run key). The linux
	// and darwin mechanisms only write files and run commands, so they can
	// be exercised on any system; "windows" needs the Windows registry.
	GOOS string
	// Home is the user's home directory (absolute).
	Home string
	// ConfigHome is $XDG_CONFIG_HOME; empty means Home/.config.
	ConfigHome string
	// Executable is the absolute path of the ncagent binary the entries
	// start, normally the running one with symlinks resolved.
	Executable string
	// UID is the user id, for launchctl's gui/<uid> domain.
	UID int
	// Getenv reads the graphical session's environment (DISPLAY,
	// WAYLAND_DISPLAY, ...) for Session; nil reads nothing.
	Getenv func(string) string
	// Runner runs systemctl and launchctl.
	Runner Runner
	// ProcDir is the proc file system, where Session reads the running
	// agent's environment; empty means /proc.
	ProcDir string

	registry regStore // nil: the real registry (Windows only)
}

// NewEnv returns the Env of the running process. getenv supplies HOME,
// XDG_CONFIG_HOME and the session variables (os.Getenv, or a test's).
func NewEnv(getenv func(string) string) (Env, error) {
	exe, err := os.Executable()
	if err != nil {
		return Env{}, fmt.Errorf("autostart: find executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	home := getenv("HOME")
	if home == "" {
		if home, err = os.UserHomeDir(); err != nil {
			return Env{}, fmt.Errorf("autostart: find home directory: %w", err)
		}
	}
	e := Env{
		GOOS:       runtime.GOOS,
		Home:       home,
		Executable: exe,
		UID:        os.Getuid(),
		Getenv:     getenv,
		Runner:     ExecRunner{},
	}
	// The XDG Base Directory Specification: "If an implementation encounters
	// a relative path in any of these variables it should consider the path
	// invalid and ignore it."
	if c := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(c) {
		e.ConfigHome = c
	}
	return e, nil
}

func (e Env) configHome() string {
	if e.ConfigHome != "" {
		return e.ConfigHome
	}
	return filepath.Join(e.Home, ".config")
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

func (e Env) check() error {
	if e.Runner == nil {
		return errors.New("autostart: no command runner")
	}
	if e.GOOS != "windows" && !filepath.IsAbs(e.Home) {
		return fmt.Errorf("autostart: home directory %q is not absolute: set HOME", e.Home)
	}
	if err := checkPath(e.Executable); err != nil {
		return fmt.Errorf("autostart: executable: %w", err)
	}
	return nil
}

// Runner runs the service-manager commands (systemctl, launchctl).
type Runner interface {
	// LookPath reports whether a command exists, like exec.LookPath.
	LookPath(file string) (string, error)
	// Run runs a command and returns its combined output. A non-zero exit
	// is an error.
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec, each bounded by 30 seconds.
type ExecRunner struct{}

// LookPath implements Runner.
func (ExecRunner) LookPath(file string) (string, error) { return exec.LookPath(file) }

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %s: %w", strings.Join(append([]string{name}, args...), " "), err)
	}
	return out, nil
}

// Op is what Enable or Disable did (or, in a dry run, would do) with one
// file or command.
type Op string

// Ops of an Action.
const (
	OpWrite     Op = "write"     // a file was created
	OpUpdate    Op = "update"    // a file of ours was rewritten (other binary, newer template)
	OpUnchanged Op = "unchanged" // a file of ours already had the right content
	OpKeep      Op = "keep"      // a file without our marker was left alone
	OpRemove    Op = "remove"    // a file of ours was removed
	OpAbsent    Op = "absent"    // there was nothing to remove
	OpRun       Op = "run"       // a command ran and succeeded
	OpSkip      Op = "skip"      // a command was not run; Detail says why
	OpFail      Op = "fail"      // a command failed; Detail has its output
)

// Action is one step of a Report.
type Action struct {
	Op      Op       `json:"op"`
	Path    string   `json:"path,omitempty"`
	Command []string `json:"command,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// Report says what Enable or Disable did, step by step.
type Report struct {
	Platform string `json:"platform"`
	DryRun   bool   `json:"dry_run"`
	// Changed reports that a file was written or removed or a command that
	// changes state was run (or would be, in a dry run).
	Changed bool     `json:"changed"`
	Actions []Action `json:"actions"`
}

func (r *Report) add(a Action) {
	switch a.Op {
	case OpWrite, OpUpdate, OpRemove, OpRun, OpFail:
		r.Changed = true
	}
	r.Actions = append(r.Actions, a)
}

// Lines renders the report for people, one line per action.
func (r Report) Lines() []string {
	would := func(done, planned string) string {
		if r.DryRun {
			return planned
		}
		return done
	}
	var lines []string
	for _, a := range r.Actions {
		cmd := strings.Join(a.Command, " ")
		var l string
		switch a.Op {
		case OpWrite:
			l = would("wrote ", "would write ") + a.Path
		case OpUpdate:
			l = would("updated ", "would update ") + a.Path
		case OpUnchanged:
			l = a.Path + " is up to date"
		case OpKeep:
			l = "left " + a.Path + " alone"
		case OpRemove:
			l = would("removed ", "would remove ") + a.Path
		case OpAbsent:
			l = a.Path + " is not there"
		case OpRun:
			l = would("ran ", "would run ") + cmd
		case OpSkip:
			l = "skipped " + cmd
		case OpFail:
			l = "failed: " + cmd
		}
		if a.Detail != "" {
			l += ": " + a.Detail
		}
		lines = append(lines, l)
	}
	return lines
}

// State is what Status found.
type State struct {
	Platform string `json:"platform"`
	// Mechanism names how ncagent starts at login here.
	Mechanism string `json:"mechanism"`
	// Enabled reports that every entry is installed and starts the current
	// binary, and that the service manager (when reachable) has it enabled.
	Enabled bool `json:"enabled"`
	// Executable is the current binary.
	Executable string   `json:"executable"`
	Entries    []Entry  `json:"entries"`
	Manager    *Manager `json:"manager,omitempty"`
	// Notes explain the design and what to do next, for people.
	Notes []string `json:"notes,omitempty"`
	// Warnings are problems to fix (a binary in the Go build cache).
	Warnings []string `json:"warnings,omitempty"`
}

// Entry is one installed (or missing) start-at-login entry.
type Entry struct {
	Kind      string `json:"kind"` // systemd-service, systemd-socket, xdg-autostart, launchd-agent, windows-run-key
	Path      string `json:"path"`
	Installed bool   `json:"installed"`
	// Managed: the entry carries ManagedMarker, so Disable removes it.
	Managed bool `json:"managed"`
	// UpToDate: the entry is exactly what Enable writes for the current
	// binary.
	UpToDate bool `json:"up_to_date"`
	// Executable is the program the entry starts ("" for a socket unit).
	Executable string `json:"executable,omitempty"`
	// Current: Executable is the current binary (true when the entry
	// starts no program).
	Current bool `json:"current"`
}

// Manager is the state of the service manager (systemd user manager,
// launchd).
type Manager struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Detail says why the manager is not available.
	Detail string      `json:"detail,omitempty"`
	Units  []UnitState `json:"units,omitempty"`
}

// UnitState is the manager's view of one unit or job.
type UnitState struct {
	Name    string `json:"name"`
	Enabled string `json:"enabled,omitempty"` // systemctl is-enabled
	Active  string `json:"active"`            // systemctl is-active; launchd: loaded or not-loaded
}

// backend is one start-at-login mechanism.
type backend interface {
	enable(ctx context.Context, env Env, r *Report) error
	disable(ctx context.Context, env Env, r *Report) error
	status(ctx context.Context, env Env) (State, error)
}

func backendFor(env Env) (backend, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	switch env.GOOS {
	case "linux":
		return systemdBackend{}, nil
	case "darwin":
		return launchdBackend{}, nil
	case "windows":
		return registryBackend{}, nil
	}
	return nil, fmt.Errorf("%w (%s)", ErrUnsupported, env.GOOS)
}

// Enable installs the per-user start-at-login entries for env.Executable
// and asks the service manager to start the agent. Running it again changes
// nothing (Report.Changed is false). A file of the same name without
// ManagedMarker is left alone (OpKeep). With dryRun it only reports what it
// would do: read-only queries of the service manager still run.
func Enable(ctx context.Context, env Env, dryRun bool) (Report, error) {
	r := Report{Platform: env.GOOS, DryRun: dryRun}
	b, err := backendFor(env)
	if err != nil {
		return r, err
	}
	err = b.enable(ctx, env, &r)
	return r, err
}

// Disable stops the agent's service-manager job and removes the entries
// Enable wrote. Entries without ManagedMarker are left alone (OpKeep).
func Disable(ctx context.Context, env Env, dryRun bool) (Report, error) {
	r := Report{Platform: env.GOOS, DryRun: dryRun}
	b, err := backendFor(env)
	if err != nil {
		return r, err
	}
	err = b.disable(ctx, env, &r)
	return r, err
}

// Status reports what is installed, whether it starts the current binary,
// and what the service manager says. It changes nothing.
func Status(ctx context.Context, env Env) (State, error) {
	b, err := backendFor(env)
	if err != nil {
		return State{Platform: env.GOOS}, err
	}
	st, err := b.status(ctx, env)
	if InBuildCache(env.Executable) {
		st.Warnings = append(st.Warnings, BuildCacheWarning(env.Executable))
	}
	return st, err
}

// InBuildCache reports whether exe is a binary the go command built into
// its build cache or a temporary go-build directory (go run, go test):
// gone after the run or the next go clean -cache, so no start-at-login
// entry should point to it.
func InBuildCache(exe string) bool {
	for _, part := range strings.Split(filepath.ToSlash(exe), "/") {
		if strings.HasPrefix(part, "go-build") {
			return true
		}
	}
	return false
}

// BuildCacheWarning says what to do about a binary in the build cache.
func BuildCacheWarning(exe string) string {
	return fmt.Sprintf("this ncagent runs from the Go build cache (%s, e.g. go run): entries pointing to it break when the cache is cleaned; install it first (go install github.com/ncagent/ncagent/cmd/ncagent@latest, or make install) and run ncagent autostart enable from there", exe)
}

// fileSpec is one file an autostart mechanism writes.
type fileSpec struct {
	kind    string
	path    string
	content []byte
	// program parses the program a file starts; nil for files that start
	// none.
	program func(content []byte) string
}

// isManaged reports whether content carries ManagedMarker.
func isManaged(content []byte) bool { return bytes.Contains(content, []byte(ManagedMarker)) }

// inspect reads the file of s and compares it with what Enable writes.
func (s fileSpec) inspect(env Env) (Entry, []byte, error) {
	e := Entry{Kind: s.kind, Path: s.path}
	got, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil, nil
	}
	if err != nil {
		return e, nil, fmt.Errorf("autostart: read %s: %w", s.path, err)
	}
	e.Installed = true
	e.Managed = isManaged(got)
	e.UpToDate = bytes.Equal(got, s.content)
	e.Current = true
	if s.program != nil {
		e.Executable = s.program(got)
		e.Current = samePath(e.Executable, env.Executable)
	}
	return e, got, nil
}

func samePath(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// write installs s unless it is up to date or not ours; it returns whether
// the file changed (or would, in a dry run).
func (s fileSpec) write(env Env, r *Report) (bool, error) {
	e, _, err := s.inspect(env)
	if err != nil {
		return false, err
	}
	switch {
	case !e.Installed:
		r.add(Action{Op: OpWrite, Path: s.path})
	case !e.Managed:
		r.add(Action{Op: OpKeep, Path: s.path, Detail: "it has no \"" + ManagedMarker + "\" marker, so it was written by hand; remove it and run ncagent autostart enable again to replace it"})
		return false, nil
	case e.UpToDate:
		r.add(Action{Op: OpUnchanged, Path: s.path})
		return false, nil
	default:
		d := "it had other content"
		if !e.Current {
			d = "it started " + e.Executable
		}
		r.add(Action{Op: OpUpdate, Path: s.path, Detail: d})
	}
	if r.DryRun {
		return true, nil
	}
	return true, writeFileAtomic(s.path, s.content, 0o644)
}

// remove deletes the file of s when it is ours; it returns whether it did
// (or would).
func (s fileSpec) remove(env Env, r *Report) (bool, error) {
	e, _, err := s.inspect(env)
	if err != nil {
		return false, err
	}
	switch {
	case !e.Installed:
		r.add(Action{Op: OpAbsent, Path: s.path})
		return false, nil
	case !e.Managed:
		r.add(Action{Op: OpKeep, Path: s.path, Detail: "it has no \"" + ManagedMarker + "\" marker, so it was written by hand; remove it yourself if you no longer want it"})
		return false, nil
	}
	r.add(Action{Op: OpRemove, Path: s.path})
	if r.DryRun {
		return true, nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("autostart: remove %s: %w", s.path, err)
	}
	return true, nil
}

// writeFileAtomic writes data to path with mode through a temporary file in
// the same directory, creating missing directories 0755.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := atomicfile.Write(path, mode, 0o755, atomicfile.Bytes(data)); err != nil {
		return fmt.Errorf("autostart: write %s: %w", path, err)
	}
	return nil
}

// firstLine returns the first non-empty line of out, or of err's text.
func firstLine(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
