//go:build linux

package agent

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
	"github.com/ncagent/ncagent/ui"
)

// cmdlineWatcher is another user (uid 65534) reading every process's
// argument list in a loop, as any user of the machine can.
type cmdlineWatcher struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	stop string // the loop ends when this file exists
}

// watchCmdlines starts the watcher; it skips the test unless it runs as
// root with setpriv.
func watchCmdlines(t *testing.T) *cmdlineWatcher {
	t.Helper()
	setpriv := testutil.Setpriv(t, "watching")
	dir := testutil.ShortDir(t)
	os.Chmod(dir, 0o755)
	w := &cmdlineWatcher{stop: filepath.Join(dir, "stop")}
	// One argument a line, each line once.
	loop := `while [ ! -e "$1" ]; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n'; done | awk '!seen[$0]++'`
	w.cmd = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", loop, "sh", w.stop)
	w.cmd.Stdout = &w.out
	w.cmd.Stderr = &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start watcher: %v", err)
	}
	t.Cleanup(func() { w.seen(t) })
	return w
}

// seen stops the watcher and returns every argument it saw.
func (w *cmdlineWatcher) seen(t *testing.T) string {
	if w.cmd.ProcessState == nil {
		os.WriteFile(w.stop, nil, 0o644)
		done := make(chan error, 1)
		go func() { done <- w.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			w.cmd.Process.Kill()
			<-done
			t.Error("the watcher did not stop")
		}
	}
	return w.out.String()
}

// chromiumOpener installs an xdg-open that starts headless Chromium on its
// argument, the way xdg-open starts the user's browser, and points
// OpenURL's trampolines at a fresh runtime dir. It returns that dir.
func chromiumOpener(t *testing.T) (runtimeDir string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian: apt-get install chromium)")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := "#!/bin/sh\n" + bin + " --headless --no-sandbox --disable-gpu --ignore-certificate-errors" +
		" --no-first-run --disable-background-networking --disable-component-update --disable-sync" +
		" --password-store=basic --use-mock-keychain --user-data-dir=" + filepath.Join(dir, "profile") +
		" --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'" +
		" \"$1\" >/dev/null 2>&1 &\necho $! >" + pidFile + "\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
	t.Setenv("DISPLAY", ":0")
	runtimeDir = t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	t.Cleanup(func() {
		b, _ := os.ReadFile(pidFile)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
	return runtimeDir
}

// checkNoTrampoline fails t when a trampoline page is left in runtimeDir.
func checkNoTrampoline(t *testing.T, runtimeDir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(runtimeDir, "ncagent", "open", "*"))
	if len(left) != 0 {
		t.Errorf("trampolines left after use: %q", left)
	}
}

// checkSeen fails t when the watcher saw one of secrets, or never saw the
// browser's arguments (then it could not have seen anything).
func checkSeen(t *testing.T, seen string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(seen, s) {
			t.Errorf("another user read %q on a command line", s)
		}
	}
	if !strings.Contains(seen, "--ignore-certificate-errors") {
		t.Errorf("the watcher never saw the browser's arguments (%d bytes seen)", len(seen))
	}
}

// setupBackend is a Backend with no accounts, enough to serve the setup
// page's form.
type setupBackend struct{}

func (setupBackend) Status(context.Context) (ipc.StatusResponse, error) {
	return ipc.StatusResponse{}, nil
}
func (setupBackend) Login(context.Context, ipc.Peer, ipc.LoginRequest, func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	return ipc.LoginEvent{}, errors.New("not in this test")
}
func (setupBackend) Revoke(context.Context, ipc.Peer, ipc.RevokeRequest) (ipc.RevokeResponse, error) {
	return ipc.RevokeResponse{}, errors.New("not in this test")
}
func (setupBackend) Subscribe() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// TestSetupLinkNotOnCommandLine opens the setup page as Add account… does,
// in a real browser, while another uid reads every command line: the
// one-time token must never show, the browser must still get in, and the
// trampoline must be gone once the link was redeemed.
func TestSetupLinkNotOnCommandLine(t *testing.T) {
	runtimeDir := chromiumOpener(t)
	redeemed := make(chan string, 1)
	s := ui.NewSetupServer(setupBackend{}, ui.SetupOptions{Redeemed: func(link string) {
		ForgetURL(link)
		redeemed <- link
	}})
	link, err := s.Start(t.Context())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	u, _ := url.Parse(link)
	token := u.Query().Get("token")

	w := watchCmdlines(t)
	if err := OpenURL(link); err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	select {
	case got := <-redeemed:
		if got != link {
			t.Errorf("redeemed: got another link than opened")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the browser did not redeem the link within 30s")
	}
	checkSeen(t, w.seen(t), token, link)
	checkNoTrampoline(t, runtimeDir)
}

// TestAuthorizationURLNotOnCommandLine runs a browser sign-in that opens
// the authorization URL in a real browser while another uid reads every
// command line: neither the URL, its state, nonce nor PKCE challenge may
// show, and the sign-in must succeed.
func TestAuthorizationURLNotOnCommandLine(t *testing.T) {
	runtimeDir := chromiumOpener(t)
	s := idptest.New(t, idptest.Options{})
	log := newEventLog()
	r := browserRequest(t, s, log)
	opened := make(chan error, 1)
	r.Progress = func(ev ipc.LoginEvent) {
		log.progress(ev)
		if ev.Type == "open_url" {
			opened <- OpenURL(ev.URL)
		}
	}
	w := watchCmdlines(t)
	authURL, done := startBrowser(t, context.Background(), r, log)
	if err := <-opened; err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	out := wait(t, done)
	ForgetURL(authURL) // as the agent does when the sign-in ends
	if out.err != nil {
		t.Fatalf("sign-in: %v", out.err)
	}
	q, _ := url.Parse(authURL)
	checkSeen(t, w.seen(t), authURL, q.Query().Get("state"), q.Query().Get("nonce"),
		q.Query().Get("code_challenge"), q.Query().Get("redirect_uri"))
	checkNoTrampoline(t, runtimeDir)
}
