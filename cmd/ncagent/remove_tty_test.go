package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveCtrlC types Ctrl-C at ncagent remove's y/N prompt in a real
// terminal (tmux): remove exits 130 at once, as every verb does on
// Ctrl-C, and the account is kept.
func TestRemoveCtrlC(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux: apt-get install tmux (scripts/test does as root)")
	}
	bin, err := exec.LookPath("ncagent")
	if err != nil {
		t.Fatalf("ncagent is not on PATH: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	const config = "[accounts.work]\nkind = \"oidc\"\nserver = \"https://cloud.example\"\nissuer = \"https://id.example\"\nclient_id = \"ncagent\"\n"
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"NCAGENT_CONFIG=" + cfg, "NCAGENT_SOCKET=" + filepath.Join(dir, "run", "agent.sock"),
		"NCAGENT_NO_START=1", "DBUS_SESSION_BUS_ADDRESS=", "DISPLAY=", "WAYLAND_DISPLAY="}
	term := newTmux(t, dir, "bash --norc --noprofile", env...)
	term.typeLine("export PATH=" + filepath.Dir(bin) + ":$PATH; cd " + dir)
	term.typeLine("clear; ncagent remove work; echo rc=$?")
	term.waitFor("[y/N]")
	term.tmux("send-keys", "C-c")
	term.waitFor("rc=130")
	term.waitFor("ncagent: interrupted: nothing removed")
	got, err := os.ReadFile(cfg)
	if err != nil || !strings.Contains(string(got), "[accounts.work]") {
		t.Errorf("config.toml changed: %v", err)
	}
}
