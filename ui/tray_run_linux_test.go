package ui

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// buildNcagent builds the ncagent program into a temporary directory.
func buildNcagent(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build ncagent with")
	}
	bin := filepath.Join(t.TempDir(), "ncagent")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, "github.com/ncagent/ncagent/cmd/ncagent").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ncagent: %v\n%s", err, out)
	}
	return bin
}

// runningAgent is ncagent run as a child process.
type runningAgent struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed when the process ended
	err    error         // how it ended; read after exited is closed
}

// runProgram starts ncagent run with args and the fixture's socket, config
// and keychain, plus env, and waits until it answers on its socket.
func runProgram(t *testing.T, bin string, f *agentFixture, env []string, args ...string) *runningAgent {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(),
		"NCAGENT_SOCKET="+f.socket,
		"NCAGENT_CONFIG="+f.cfgPath,
		"NCAGENT_KEYRING_SERVICE="+f.service,
		"XDG_CONFIG_HOME="+t.TempDir(), // Start at login reads autostart entries here
	)
	cmd.Env = append(cmd.Env, env...)
	r := &runningAgent{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ncagent run: %v", err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default: // the test failed before it stopped ncagent
			cmd.Process.Kill()
			<-r.exited
		}
		logs := r.stderr.String()
		if t.Failed() {
			t.Logf("ncagent's log:\n%s", logs)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, s := range f.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("ncagent's log holds secret #%d the test saw", i)
			}
		}
	})
	waitFor(t, "ncagent answers on its socket", func() bool {
		select {
		case <-r.exited:
			t.Fatalf("ncagent run ended early: %v\n%s", r.err, r.stderr.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := f.client.Status(ctx)
		return err == nil
	})
	return r
}

// stop sends SIGINT and wants a clean exit saying the agent stopped.
func (r *runningAgent) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupt ncagent: %v", err)
	}
	r.wait(t)
}

// wait wants ncagent to exit 0 within waitTimeout, saying the agent stopped.
func (r *runningAgent) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.exited:
		if r.err != nil {
			t.Errorf("ncagent run: got %v, want exit 0; log:\n%s", r.err, r.stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("ncagent did not stop within %v; log:\n%s", waitTimeout, r.stderr.String())
	}
	if !strings.Contains(r.stderr.String(), "agent stopped") {
		t.Errorf("log: got %q, want it to say the agent stopped", r.stderr.String())
	}
}

// logLine returns the first log line matching re, or "".
func (r *runningAgent) logLine(re string) string {
	return regexp.MustCompile(`(?m)^.*` + re + `.*$`).FindString(r.stderr.String())
}

// TestTrayRunVerb runs the ncagent program's run verb, as a desktop
// session starts it: without a session bus it runs headless and logs why;
// with a bus but no StatusNotifierWatcher (no panel yet) the agent serves
// tokens and its tray menu works on the bus, Quit included; --headless
// starts no tray.
func TestTrayRunVerb(t *testing.T) {
	needBus(t)
	testutil.RequireSecretService(t)
	bin := buildNcagent(t)

	t.Run("no session bus", func(t *testing.T) {
		f := newAccounts(t)
		r := runProgram(t, bin, f, []string{"DBUS_SESSION_BUS_ADDRESS=", "DISPLAY=:99"})
		line := r.logLine(`msg="tray not started"`)
		if !strings.Contains(line, "no session bus") {
			t.Errorf("log: got %q, want a line saying the tray was not started for want of a session bus", r.stderr.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		st, err := f.client.Status(ctx)
		if err != nil || st.PID != r.cmd.Process.Pid {
			t.Errorf("status: got pid %d, error %v, want pid %d", st.PID, err, r.cmd.Process.Pid)
		}
		r.stop(t)
	})

	t.Run("no watcher", func(t *testing.T) {
		idp := idptest.New(t, idptest.Options{})
		f := newAccounts(t, testAccount{"work", idp})
		client := busConn(t)
		if hasOwner(client, watcherName) {
			t.Fatal("a StatusNotifierWatcher is on the test bus; want a private bus without one")
		}
		r := runProgram(t, bin, f, nil)
		if _, err := f.token(ipc.TokenRequest{Account: "work"}); err != nil {
			t.Fatalf("token: %v", err)
		}
		waitFor(t, "the tray started", func() bool { return r.logLine(`msg="tray started"`) != "" })
		menu, item := trayMenu(t, client, r.cmd.Process.Pid)
		u, _ := url.Parse(idp.Issuer())
		title := "work — " + regexp.QuoteMeta(idptest.DefaultSubject+"@"+u.Host) + " — signed in"
		waitMenu(t, menu, "work signed in", groupIs("work", title+"(, token valid \\d+ min)?", "Revoke access…", "Open Nextcloud"))
		// The token cached after the state changed shows once the menu
		// opens (it changes no state, so the agent says nothing).
		waitMenuOpening(t, menu, "work's token", groupIs("work", title+", token valid \\d+ min", "Revoke access…", "Open Nextcloud"))
		waitTooltip(t, item, "ncagent: work signed in")
		waitIcon(t, item, iconOK)
		click(t, menu, find(t, getLayout(t, menu), "", "Quit"))
		r.wait(t)
		if hasOwner(client, trayItemName(r.cmd.Process.Pid)) {
			t.Errorf("the tray item is still on the bus after Quit")
		}
	})

	t.Run("headless flag", func(t *testing.T) {
		f := newAccounts(t)
		r := runProgram(t, bin, f, nil, "--headless", "--log-level", "debug")
		if line := r.logLine(`msg="tray not started"`); !strings.Contains(line, "reason=--headless") {
			t.Errorf("log: got %q, want a line saying --headless kept the tray off", r.stderr.String())
		}
		r.stop(t)
		if line := r.logLine(`msg="tray started"`); line != "" {
			t.Errorf("log: got %q with --headless", line)
		}
	})
}
