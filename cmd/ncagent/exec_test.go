//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/nctest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// execWorld is a real agent process serving account "work" on a fake
// Nextcloud that takes Bearer tokens of the test IdP.
type execWorld struct {
	idp    *idptest.Server
	nc     *nctest.Server
	p      provisioned
	socket string
	exe    string

	mu    sync.Mutex // guards auths
	auths []string   // Authorization of every request that reached Nextcloud
}

func startExecWorld(t *testing.T) *execWorld {
	t.Helper()
	testutil.RequireSecretService(t)
	w := &execWorld{idp: idptest.New(t, idptest.Options{})}
	w.nc = nctest.New(t, nctest.Options{
		LoginName: idptest.DefaultSubject,
		Bearer: func(tok string) (string, bool) {
			info := w.idp.Inspect(tok)
			return info.Subject, info.Active && info.Use == "access_token"
		},
		OnRequest: func(r *http.Request) {
			w.mu.Lock()
			w.auths = append(w.auths, r.Header.Get("Authorization"))
			w.mu.Unlock()
		},
	})
	w.p = provisionAgent(t, w.idp, "")
	cfg := fmt.Sprintf("[accounts.work]\nkind = \"oidc\"\nserver = %q\nissuer = %q\nclient_id = \"ncagent\"\nuser = %q\nscopes = [\"openid\", \"files\"]\n",
		w.nc.URL, w.idp.Issuer(), idptest.DefaultSubject)
	if err := os.WriteFile(w.p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	w.socket = filepath.Join(w.p.sockDir, "agent.sock")
	var err error
	if w.exe, err = os.Executable(); err != nil {
		t.Fatal(err)
	}
	agent := w.command("run", "--headless")
	var logs testutil.SyncBuffer
	agent.Stderr = &logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
		for _, s := range w.secrets() {
			if strings.Contains(logs.String(), s) {
				t.Errorf("the agent log holds a secret")
			}
		}
	})
	if err := awaitAgent(w.socket, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return w
}

// command returns "ncagent args..." run by this test binary.
func (w *execWorld) command(args ...string) *exec.Cmd {
	cmd := exec.Command("bash", append([]string{"-c", `exec -a ncagent "$0" "$@"`, w.exe}, args...)...)
	cmd.Env = append(os.Environ(),
		"NCAGENT_CONFIG="+w.p.config,
		"NCAGENT_KEYRING_SERVICE="+w.p.service,
		"NCAGENT_SOCKET="+w.socket,
		"NCAGENT_NO_START=1",
	)
	return cmd
}

// secrets returns the refresh token and every token that reached Nextcloud.
func (w *execWorld) secrets() []string {
	out := []string{w.p.tok.RefreshToken, w.p.tok.AccessToken}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.auths {
		if _, v, ok := strings.Cut(a, " "); ok {
			out = append(out, v)
		}
	}
	return out
}

// childScript is the program exec runs: a basic-auth WebDAV request with
// the variables it got (curl reads the credential from stdin, not argv),
// then it reports and sleeps until killed.
const childScript = `code=$(printf 'user = "%s:%s"\n' "$NEXTCLOUD_USERNAME" "$NEXTCLOUD_PASSWORD" |
  curl -s -K - -o /dev/null -w '%{http_code}' -X PROPFIND -H 'Depth: 0' "$NEXTCLOUD_HOST/remote.php/dav/files/$NEXTCLOUD_USERNAME/")
echo "$code" > "$0/status"
echo $$ > "$0/pid"
test "$NEXTCLOUD_PASSWORD" = "$NEXTCLOUD_APP_PASSWORD" && test -z "$NEXTCLOUD_ACCESS_TOKEN" && echo ok > "$0/env"
exec sleep 60`

func waitFile(t *testing.T, path string) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("%s never written", path)
	return ""
}

// TestExecSession: the child of ncagent exec reaches Nextcloud through the
// proxy with nothing long-lived in its environment; status lists the
// session; SIGKILL of the exec parent ends the session within a second,
// after which the child's credential gets 401.
func TestExecSession(t *testing.T) {
	w := startExecWorld(t)
	dir := t.TempDir()
	parent := w.command("exec", "--account", "work", "--", "sh", "-c", childScript, dir)
	parent.Env = append(parent.Env, "NEXTCLOUD_ACCESS_TOKEN=inherited-must-go")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- parent.Wait() }()
	if got := waitFile(t, filepath.Join(dir, "status")); got != "207" {
		t.Errorf("child's PROPFIND through the proxy: got HTTP %s, want 207", got)
	}
	childPID, _ := strconv.Atoi(waitFile(t, filepath.Join(dir, "pid")))
	t.Cleanup(func() { syscall.Kill(childPID, syscall.SIGKILL) })
	if got := waitFile(t, filepath.Join(dir, "env")); got != "ok" {
		t.Errorf("child env check: got %q", got)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", childPID))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.secrets() {
		if bytes.Contains(environ, []byte(s)) {
			t.Errorf("the child's environment holds an account secret")
		}
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(environ), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if !strings.HasPrefix(env["NEXTCLOUD_HOST"], "http://127.0.0.1:") || env["NEXTCLOUD_USERNAME"] != idptest.DefaultSubject ||
		len(env["NEXTCLOUD_PASSWORD"]) < 43 || env["NCAGENT_SOCKET"] != w.socket {
		t.Errorf("child env: host %q user %q password of %d chars socket %q", env["NEXTCLOUD_HOST"], env["NEXTCLOUD_USERNAME"], len(env["NEXTCLOUD_PASSWORD"]), env["NCAGENT_SOCKET"])
	}
	w.mu.Lock()
	for i, a := range w.auths {
		if !strings.HasPrefix(a, "Bearer ") || strings.Contains(a, env["NEXTCLOUD_PASSWORD"]) {
			t.Errorf("upstream request %d did not carry the account's Bearer", i)
		}
	}
	w.mu.Unlock()

	// status --json lists the session with the parent's pid.
	st := w.command("status", "--json")
	out, _ := st.Output()
	var doc ipc.StatusResponse
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.ExecSessions) != 1 ||
		doc.ExecSessions[0].PID != parent.Process.Pid || doc.ExecSessions[0].Requests != 1 || doc.ExecSessions[0].Account != "work" {
		t.Errorf("status --json sessions: got %+v (%v), want one of pid %d with 1 request", doc.ExecSessions, err, parent.Process.Pid)
	}
	if bytes.Contains(out, []byte(env["NEXTCLOUD_PASSWORD"])) {
		t.Errorf("status holds the session credential")
	}

	out, _ = w.command("status").Output()
	if !bytes.Contains(out, []byte("EXEC PID")) || !bytes.Contains(out, []byte(fmt.Sprintf("\n%d ", parent.Process.Pid))) {
		t.Errorf("status does not list the session of pid %d:\n%s", parent.Process.Pid, out)
	}

	// SIGKILL the parent: the session is gone within a second.
	cl := ipc.NewClient(w.socket)
	defer cl.Close()
	parent.Process.Kill()
	<-done
	killed := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cl.Status(ctx)
		cancel()
		list := st.ExecSessions
		if err == nil && len(list) == 0 {
			break
		}
		if time.Since(killed) > time.Second {
			t.Fatalf("session still open %v after SIGKILL of the exec parent: %+v, %v", time.Since(killed), list, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ := http.NewRequest("PROPFIND", env["NEXTCLOUD_HOST"]+"/remote.php/dav/files/"+env["NEXTCLOUD_USERNAME"]+"/", nil)
	req.SetBasicAuth(env["NEXTCLOUD_USERNAME"], env["NEXTCLOUD_PASSWORD"])
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the dead session's credential: got HTTP %d, want 401", resp.StatusCode)
		}
	}
}

// TestExecExitAndSignals: the exit code passes through, signals are
// forwarded to the child, and a child killed by a signal gives 128+n.
func TestExecExitAndSignals(t *testing.T) {
	w := startExecWorld(t)
	if err := w.command("exec", "--", "sh", "-c", "exit 7").Run(); exitCode(err) != 7 {
		t.Errorf("exit 7: got %v", err)
	}
	dir := t.TempDir()
	cmd := w.command("exec", "--", "sh", "-c", `trap 'exit 42' TERM; echo ready > "$0/ready"; while :; do sleep 0.05; done`, dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(dir, "ready"))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); exitCode(err) != 42 {
		t.Errorf("SIGTERM forwarded to a child trapping it: got %v, want exit 42", err)
	}
	if err := w.command("exec", "--", "sh", "-c", "kill -KILL $$").Run(); exitCode(err) != 128+9 {
		t.Errorf("child killed by SIGKILL: got %v, want exit 137", err)
	}
	out, err := w.command("exec").CombinedOutput()
	if exitCode(err) != exitUsage || !strings.Contains(string(out), "only --direct can print variables") {
		t.Errorf("exec without a command: got %v %q", err, out)
	}
	out, err = w.command("exec", "--direct").Output()
	if err != nil || !strings.Contains(string(out), "export NEXTCLOUD_ACCESS_TOKEN='") {
		t.Errorf("exec --direct without a command: got %v", err)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
