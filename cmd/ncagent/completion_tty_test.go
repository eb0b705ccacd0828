package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompletionOnTab types "ncagent tok" and a real TAB into bash (with
// bash-completion loaded), zsh (compinit) and fish, each in a terminal
// that tmux runs, and reads the screen: the completion script ncagent
// completion SHELL prints completes the verb, and an account name, as a
// user sees it. ncagent on PATH is this test binary (TestMain).
func TestCompletionOnTab(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux: apt-get install tmux (scripts/test does as root)")
	}
	bin, err := exec.LookPath("ncagent")
	if err != nil {
		t.Fatalf("ncagent is not on PATH: %v", err)
	}
	path := filepath.Dir(bin) + ":" + os.Getenv("PATH")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	err = os.WriteFile(cfg, []byte("[accounts.work]\nkind = \"app-password\"\nserver = \"https://cloud.example.com\"\nuser = \"alice\"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range []struct {
		name  string
		shell string
		argv  string // the shell, without the user's startup files
		setup string // typed first: load the completion
	}{
		{"bash", "bash", "bash --norc --noprofile",
			`. /usr/share/bash-completion/bash_completion && . <(ncagent completion bash)`},
		// Installed in fpath, as the packages do: compinit autoloads
		// the file on the first TAB, which must complete already.
		{"zsh", "zsh", "zsh -f",
			`mkdir -p ` + dir + `/zfunc && ncagent completion zsh >` + dir + `/zfunc/_ncagent && fpath=(` + dir + `/zfunc $fpath) && autoload -U compinit && compinit -u`},
		// Sourced after compinit, as from a .zshrc.
		{"zsh-sourced", "zsh", "zsh -f",
			`autoload -U compinit && compinit -u && . <(ncagent completion zsh)`},
		{"fish", "fish", "fish --no-config",
			`ncagent completion fish | source`},
	} {
		t.Run(sh.name, func(t *testing.T) {
			if _, err := exec.LookPath(sh.shell); err != nil {
				t.Skipf("no %s: apt-get install %s (scripts/test does as root)", sh.shell, sh.shell)
			}
			if sh.shell == "bash" {
				if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
					t.Skip("no bash-completion: apt-get install bash-completion (scripts/test does as root)")
				}
			}
			term := newTmux(t, dir, sh.argv, "NCAGENT_CONFIG="+cfg, "NCAGENT_NO_START=1")
			// A shell's startup files (zsh reads /etc/zsh/zshenv even
			// with -f) may set PATH: put this ncagent first again.
			term.typeLine("export PATH=" + path + " && " + sh.setup + " && echo RE''ADY")
			term.waitFor("\nREADY\n")
			term.typeLine("clear")
			term.keys("ncagent tok", "Tab")
			term.waitFor("ncagent token") // tmux drops the space after it
			term.keys("w", "Tab")         // after the space the shell added
			term.waitFor("ncagent token work")
		})
	}
}

// tmuxTerm is one shell in a detached tmux session on a private server.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T, dir, argv string, env ...string) *tmuxTerm {
	t.Helper()
	term := &tmuxTerm{t: t, socket: filepath.Join(dir, "tmux-"+strconv.FormatInt(time.Now().UnixNano(), 36))}
	args := []string{"new-session", "-d", "-x", "120", "-y", "30"}
	for _, e := range append(env, "TERM=xterm") {
		args = append(args, "-e", e)
	}
	term.tmux(append(args, argv)...)
	t.Cleanup(func() { exec.Command("tmux", "-S", term.socket, "kill-server").Run() })
	return term
}

func (m *tmuxTerm) tmux(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// keys types text literally, then each named key (Tab, Enter).
func (m *tmuxTerm) keys(text string, named ...string) {
	m.t.Helper()
	m.tmux("send-keys", "-l", text)
	for _, k := range named {
		m.tmux("send-keys", k)
	}
}

func (m *tmuxTerm) typeLine(line string) { m.t.Helper(); m.keys(line, "Enter") }

// waitFor waits up to 10s for the screen to show want (the screen's lines
// without their trailing blanks).
func (m *tmuxTerm) waitFor(want string) {
	m.t.Helper()
	var screen string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		screen = m.tmux("capture-pane", "-p")
		if strings.Contains(screen, want) {
			return
		}
	}
	m.t.Fatalf("the screen never showed %q:\n%s", want, screen)
}

// ncagentShell starts bash in a tmux terminal with ncagent on PATH, in a
// fresh directory holding config.toml with config, and env (plus
// NCAGENT_CONFIG) exported. It skips without tmux. It returns the
// terminal, the directory, the config path and the full environment.
func ncagentShell(t *testing.T, config string, env func(dir string) []string) (term *tmuxTerm, dir, cfg string, all []string) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux: apt-get install tmux (scripts/test does as root)")
	}
	bin, err := exec.LookPath("ncagent")
	if err != nil {
		t.Fatalf("ncagent is not on PATH: %v", err)
	}
	dir = t.TempDir()
	cfg = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	all = append([]string{"NCAGENT_CONFIG=" + cfg}, env(dir)...)
	term = newTmux(t, dir, "bash --norc --noprofile", all...)
	term.typeLine("export PATH=" + filepath.Dir(bin) + ":$PATH; cd " + dir)
	return term, dir, cfg, all
}
