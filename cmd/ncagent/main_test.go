package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/nctest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ncagent": func() { os.Exit(mainCode()) },
		// The browser the CLI opens (agent.OpenURL runs xdg-open on
		// Linux): a scripted one, see fakeBrowser.
		"xdg-open": func() { os.Exit(fakeBrowser()) },
	})
}

// scriptAccounts are the account names scripts use; secretfree looks for
// their keychain secrets and Setup's cleanup deletes them.
var scriptAccounts = []string{"work", "down", "gone", "dev", "cloud"}

// world is what Setup starts for one script: its own authorization server,
// fake Nextcloud and keychain service, so that scripts running in parallel
// never see each other's hooks and counters.
type world struct {
	idp *idptest.Server
	nc  *nctest.Server
	kc  *agent.Keychain
	// profiles are the provider profile servers (providers_test.go); tb
	// is the parent test, for idptest helpers run by script commands.
	profiles map[string]*idptest.Server
	tb       testing.TB

	mu      sync.Mutex // guards secrets
	secrets []string   // every secret the script met, to look for leaks
}

// remember adds secrets to look for in secretfree.
func (w *world) remember(secrets ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		if s != "" && !slices.Contains(w.secrets, s) {
			w.secrets = append(w.secrets, s)
		}
	}
}

// snapshot remembers what the keychain and the fake Nextcloud hold now and
// returns every secret seen so far. It never prints one.
func (w *world) snapshot() []string {
	for _, a := range scriptAccounts {
		if s, err := w.kc.Get(a); err == nil {
			w.remember(s.Reveal())
		}
	}
	w.remember(w.nc.AppPasswords()...)
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.secrets)
}

func worldOf(ts *testscript.TestScript) *world { return ts.Value("world").(*world) }

// scriptTB lets idptest and nctest run under a script's Setup: failures
// fail the script, cleanups run when it ends. The embedded testing.TB (the
// parent test) only completes the interface; every method the servers use
// is overridden.
type scriptTB struct {
	testing.TB
	env *testscript.Env
}

func (s scriptTB) Helper()                      {}
func (s scriptTB) Cleanup(f func())             { s.env.Defer(f) }
func (s scriptTB) Fatal(args ...any)            { s.env.T().Fatal(args...) }
func (s scriptTB) Fatalf(f string, args ...any) { s.env.T().Fatal(fmt.Sprintf(f, args...)) }
func (s scriptTB) Errorf(f string, args ...any) { s.env.T().Fatal(fmt.Sprintf(f, args...)) }
func (s scriptTB) Logf(f string, args ...any)   { s.env.T().Log(fmt.Sprintf(f, args...)) }
func (s scriptTB) Skipf(f string, args ...any)  { s.env.T().Skip(fmt.Sprintf(f, args...)) }
func (s scriptTB) Log(args ...any)              { s.env.T().Log(args...) }

// TestScripts runs the CLI as a program against a real agent, the in-process
// authorization server and the real Secret Service.
//
// Each script gets its own authorization server ($ISSUER, client id
// "ncagent"), fake Nextcloud ($NCSERVER), keychain service, and:
// $NCAGENT_CONFIG with accounts "work" (oidc, signed in), "down" (oidc, its
// IdP unreachable) and "gone" (oidc, never signed in), $NCAGENT_SOCKET in a
// fresh short directory. With DISPLAY set, the browser the CLI opens is
// fakeBrowser (see there), which logs where it landed to $WORK/browser.log.
//
// Commands: "exitcode N cmd args..." runs cmd and checks its exit code;
// "waitagent" waits until the agent answers; "stopagent" stops it;
// "secretfree FILE" fails when FILE holds a secret; "waitstate", "waitlog",
// "waitbrowser", "introspect", "ncpassword", "idp" and "nc" are described
// in login_test.go.
func TestScripts(t *testing.T) {
	testutil.RequireSecretService(t)
	// One signing key for every script's authorization server: generating
	// one takes a while.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			tb := scriptTB{TB: t, env: e}
			idp := idptest.New(tb, idptest.Options{Key: key})
			nc := nctest.New(tb, nctest.Options{})
			sockDir, err := os.MkdirTemp("", "ncs")
			if err != nil {
				return err
			}
			e.Defer(func() { os.RemoveAll(sockDir) })
			service := "ncagent-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			kc := agent.NewKeychain(service, 5*time.Second)
			tok := idp.Login(tb, idptest.PublicClientID, "openid", "offline_access", "files", "calendar")
			if err := kc.Put("work", broker.Secret(tok.RefreshToken)); err != nil {
				return err
			}
			if err := kc.Put("down", broker.Secret("never-used-refresh-token")); err != nil {
				return err
			}
			e.Defer(func() {
				for _, a := range scriptAccounts {
					kc.Delete(a)
				}
			})
			cfg := fmt.Sprintf(`[accounts.work]
kind = "oidc"
server = %[1]q
issuer = %[1]q
client_id = "ncagent"
scopes = ["openid", "files", "calendar"]

[accounts.down]
kind = "oidc"
server = %[2]q
issuer = %[2]q
client_id = "ncagent"

[accounts.gone]
kind = "oidc"
server = %[1]q
issuer = %[1]q
client_id = "ncagent"
`, idp.Issuer(), downURL)
			cfgPath := filepath.Join(e.WorkDir, "config.toml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				return err
			}
			// testscript starts from an empty environment: pass the session
			// bus on, so the agent reaches the Secret Service.
			for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"} {
				if v := os.Getenv(k); v != "" {
					e.Setenv(k, v)
				}
			}
			if e.Getenv("XDG_RUNTIME_DIR") == "" {
				e.Setenv("XDG_RUNTIME_DIR", sockDir) // as a desktop session has: OpenURL's trampolines go there
			}
			// The fake browser's settings reach it through the opener's
			// minimal environment only when listed.
			e.Setenv("NCAGENT_OPENER_ENV", "WORK FAKE_BROWSER FAKE_BROWSER_HOLD")
			e.Setenv("NCAGENT_CONFIG", cfgPath)
			socket := filepath.Join(sockDir, "agent.sock")
			// An agent a script started on demand is detached: stop it
			// even when the script failed before it could.
			e.Defer(func() { stopAgentAt(socket) })
			e.Setenv("NCAGENT_SOCKET", socket)
			e.Setenv("NCAGENT_KEYRING_SERVICE", service)
			e.Setenv("NCAGENT_NO_START", "1")
			e.Setenv("ISSUER", idp.Issuer())
			e.Setenv("NCSERVER", nc.URL)
			idp.ResetCalls() // scripts count their own requests only
			w := &world{idp: idp, nc: nc, kc: kc, profiles: startProviders(tb, e, key), tb: t}
			w.remember(tok.RefreshToken, tok.AccessToken, tok.IDToken)
			e.Values["world"] = w
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":    cmdExitCode,
			"waitagent":   cmdWaitAgent,
			"secretfree":  cmdSecretFree,
			"stopagent":   cmdStopAgent,
			"waitstate":   cmdWaitState,
			"waitlog":     cmdWaitLog,
			"waitbrowser": cmdWaitBrowser,
			"introspect":  cmdIntrospect,
			"ncpassword":  cmdNCPassword,
			"idp":         cmdIdP,
			"nc":          cmdNC,
			"chain":       cmdChain,
			"useidp":      cmdUseIdP,
			"provider":    cmdProvider,
			"agentenv":    cmdAgentEnv,
			"filestore":   cmdFileStore,
			"private":     cmdPrivate,
			"truncate":    cmdTruncate,
			"nodaemons":   cmdNoDaemons,
		},
	})
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("exit code: got %d, want %d", got, want)
	}
}

func cmdWaitAgent(ts *testscript.TestScript, neg bool, args []string) {
	if err := awaitAgent(ts.Getenv("NCAGENT_SOCKET"), 15*time.Second); err != nil {
		ts.Fatalf("%v", err)
	}
}

// awaitAgent waits up to within for the agent on socket to answer a
// status request.
func awaitAgent(socket string, within time.Duration) error {
	cl := ipc.NewClient(socket)
	defer cl.Close()
	err := waitFor(within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cl.Status(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("agent did not answer within %v: %w", within, err)
	}
	return nil
}

// cmdSecretFree fails when the first file (or "stdout"/"stderr") holds a
// secret: a token the IdP issued at setup, a secret the keychain or the
// fake Nextcloud holds now or held at an earlier check, a token an
// "introspect" or "ncpassword" met, or one read from the other files (raw
// tokens, or JSON token documents). It never prints a secret.
func cmdSecretFree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: secretfree FILE [TOKENFILE...]")
	}
	data := ts.ReadFile(args[0])
	secrets := worldOf(ts).snapshot()
	for _, f := range args[1:] {
		raw := ts.ReadFile(f)
		var doc struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(raw), &doc) == nil && doc.AccessToken != "" {
			secrets = append(secrets, doc.AccessToken)
			continue
		}
		secrets = append(secrets, strings.TrimSpace(raw))
	}
	for i, tok := range secrets {
		if len(tok) >= 8 && strings.Contains(data, tok) {
			ts.Fatalf("%s holds secret #%d", args[0], i)
		}
	}
}

// cmdStopAgent stops the agent answering on $NCAGENT_SOCKET with SIGTERM
// and waits until its socket is gone.
func cmdStopAgent(ts *testscript.TestScript, neg bool, args []string) {
	if err := stopAgentAt(ts.Getenv("NCAGENT_SOCKET")); err != nil {
		ts.Fatalf("stopagent: %v", err)
	}
}

// stopAgentAt sends SIGTERM to the agent answering on socket and waits up
// to 5s for its socket to go away.
func stopAgentAt(socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := ipc.NewClient(socket).Status(ctx)
	if err != nil {
		return err
	}
	p, err := os.FindProcess(st.PID)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	for {
		if _, err := os.Stat(socket); os.IsNotExist(err) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the agent did not stop within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
