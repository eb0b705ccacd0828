package agent

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// peerProcess starts a process with env as a stand-in client and returns
// it as a peer.
func peerProcess(t *testing.T, env ...string) ipc.Peer {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return ipc.Peer{UID: os.Getuid(), PID: cmd.Process.Pid}
}

// TestLoginOpenBrowserOnlyInSession: open_browser from a client without a
// graphical session (a cron job, an SSH shell) opens nothing; from one
// with a display, or from inside the agent (the tray), it opens the
// browser.
func TestLoginOpenBrowserOnlyInSession(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	var opened atomic.Int32
	r.agent.opts.OpenURL = func(string) error { opened.Add(1); return nil }
	for _, tc := range []struct {
		name string
		peer ipc.Peer
		want bool
	}{
		{"no display", peerProcess(t, "HOME=/root"), false},
		{"empty display", peerProcess(t, "DISPLAY="), false},
		{"unknown pid", ipc.Peer{UID: os.Getuid()}, false},
		{"x11", peerProcess(t, "DISPLAY=:0"), true},
		{"wayland", peerProcess(t, "WAYLAND_DISPLAY=wayland-0"), true},
		{"the agent itself", ipc.Peer{UID: os.Getuid(), PID: os.Getpid()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened.Store(0)
			ctx, cancel := context.WithTimeout(context.Background(), loginWait)
			defer cancel()
			r.agent.Login(ctx, tc.peer, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(),
				ClientID: idptest.PublicClientID, OpenBrowser: true}, func(ev ipc.LoginEvent) {
				if ev.Type == "waiting" {
					cancel() // the URL was reported: enough
				}
			})
			if got := opened.Load() == 1; got != tc.want {
				t.Errorf("browser opened: got %v, want %v", got, tc.want)
			}
		})
	}
	if !strings.Contains(r.logs.String(), "open_browser ignored: the client is not in a graphical session") {
		t.Error("the ignored open_browser is not logged")
	}
}
