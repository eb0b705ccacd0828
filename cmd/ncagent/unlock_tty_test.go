package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestUnlockCtrlC types Ctrl-C at ncagent unlock's passphrase prompt in a
// real terminal (tmux): unlock exits 130 at once, as every verb does on
// Ctrl-C, and the terminal has its echo back.
func TestUnlockCtrlC(t *testing.T) {
	term, dir, _, env := ncagentShell(t, "[agent]\nstore = \"file\"\n", func(dir string) []string {
		if err := os.Mkdir(filepath.Join(dir, "run"), 0o700); err != nil {
			t.Fatal(err)
		}
		return []string{"NCAGENT_SOCKET=" + filepath.Join(dir, "run", "agent.sock"),
			"NCAGENT_FILE_STORE=" + filepath.Join(dir, "state", "secrets.age"), "DBUS_SESSION_BUS_ADDRESS=", "DISPLAY=", "WAYLAND_DISPLAY="}
	})
	t.Cleanup(func() {
		stop := exec.Command("ncagent", "stop")
		stop.Env = append(os.Environ(), env...)
		stop.Run()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", log)
		}
	})
	term.typeLine("ncagent run --headless 2>agent.log & until ncagent status >/dev/null 2>&1; do sleep 0.1; done; echo U''P")
	term.waitFor("\nUP\n")
	term.typeLine("clear; ncagent unlock; echo rc=$?")
	term.waitFor("new passphrase for the file store")
	term.tmux("send-keys", "C-c")
	term.waitFor("rc=130")
	term.waitFor("ncagent: interrupted: nothing was unlocked")
	term.typeLine("clear; stty -a | tr -s ' ;\\n' '\\n' | grep -qx -- -echo && echo ECHO''-OFF || echo ECHO''-ON")
	term.waitFor("ECHO-ON")
	if _, err := os.Stat(filepath.Join(dir, "state", "secrets.age")); err == nil {
		t.Error("the file store was created though unlock was interrupted")
	}
}
