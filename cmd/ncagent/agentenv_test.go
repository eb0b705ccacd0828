package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
	"github.com/rogpeppe/go-internal/testscript"
)

// cmdAgentEnv reads the environment of the agent answering on
// $NCAGENT_SOCKET from /proc/<pid>/environ: "agentenv NAME" fails unless
// NAME is set there, "! agentenv NAME" fails when it is. It never prints a
// value.
func cmdAgentEnv(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] agentenv NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := ipc.NewClient(ts.Getenv("NCAGENT_SOCKET")).Status(ctx)
	if err != nil {
		ts.Fatalf("agentenv: %v", err)
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/environ")
	if err != nil {
		ts.Fatalf("agentenv: %v", err)
	}
	set := false
	for _, kv := range strings.Split(string(raw), "\x00") {
		if strings.HasPrefix(kv, args[0]+"=") {
			set = true
		}
	}
	switch {
	case set && neg:
		ts.Fatalf("the agent's environment holds %s", args[0])
	case !set && !neg:
		ts.Fatalf("the agent's environment lacks %s", args[0])
	}
}

func TestAgentEnv(t *testing.T) {
	in := []string{"HOME=/home/alice", "NCAGENT_CONFIG=/c.toml", "NCAGENT_KEYRING_SERVICE=s", "NCAGENT_SOCKET=/s",
		"NEXTCLOUD_HOST=http://127.0.0.1:9", "NEXTCLOUD_USERNAME=alice", "NEXTCLOUD_PASSWORD=p", "NEXTCLOUD_ACCESS_TOKEN=t",
		"NCAGENT_SESSION=x", "NCAGENT_SESSION_TOKEN=y", "NCAGENT_PROXY_AUTH=z", "GITHUB_TOKEN=g", "nextcloud_password=w",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/b"}
	got := strings.Join(agentEnv(in), " ")
	want := "HOME=/home/alice NCAGENT_CONFIG=/c.toml NCAGENT_KEYRING_SERVICE=s NCAGENT_SOCKET=/s DBUS_SESSION_BUS_ADDRESS=unix:path=/b"
	if got != want {
		t.Errorf("agentEnv: got %q, want %q", got, want)
	}
}
