package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemoveCtrlC types Ctrl-C at ncagent remove's y/N prompt in a real
// terminal (tmux): remove exits 130 at once, as every verb does on
// Ctrl-C, and the account is kept.
func TestRemoveCtrlC(t *testing.T) {
	const config = "[accounts.work]\nkind = \"oidc\"\nserver = \"https://cloud.example\"\nissuer = \"https://id.example\"\nclient_id = \"ncagent\"\n"
	term, _, cfg, _ := ncagentShell(t, config, func(dir string) []string {
		return []string{"NCAGENT_SOCKET=" + filepath.Join(dir, "run", "agent.sock"),
			"NCAGENT_NO_START=1", "DBUS_SESSION_BUS_ADDRESS=", "DISPLAY=", "WAYLAND_DISPLAY="}
	})
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
