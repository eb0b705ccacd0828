//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// TestSocketActivation starts "ncagent run" the way systemd does for
// ncagent.socket: the listening socket as fd 3 with LISTEN_FDS=1 and
// LISTEN_PID set to the agent's own pid, and fetches a token through it.
func TestSocketActivation(t *testing.T) {
	testutil.RequireSecretService(t)
	idp := idptest.New(t, idptest.Options{})
	p := provisionAgent(t, idp, "")
	tok, cfgPath, sockDir, service := p.tok, p.config, p.sockDir, p.service
	socket := filepath.Join(sockDir, "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // systemd owns the socket file
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer f.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// bash sets LISTEN_PID to its own pid, then execs the agent in place
	// (argv[0] "ncagent" selects the command in this test binary).
	cmd := exec.Command("bash", "-c", `export LISTEN_PID=$$; exec -a ncagent "$0" run --headless`, exe)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(),
		"LISTEN_FDS=1",
		"NCAGENT_CONFIG="+cfgPath,
		"NCAGENT_KEYRING_SERVICE="+service,
		"NCAGENT_SOCKET="+filepath.Join(sockDir, "unused.sock"),
	)
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := ipc.NewClient(socket)
	var got ipc.TokenResponse
	for {
		got, err = cl.Token(ctx, ipc.TokenRequest{Account: "work"})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("token through the activated socket: %v", err)
	}
	if got.TokenType != "Bearer" || got.AccessToken == "" {
		t.Errorf("token: got type %q and an empty token %v, want a Bearer token", got.TokenType, got.AccessToken == "")
	}
	if active, _, _ := idp.Introspect(got.AccessToken); !active {
		t.Errorf("the IdP says the token served through the activated socket is not active")
	}
	if _, err := os.Stat(filepath.Join(sockDir, "unused.sock")); !os.IsNotExist(err) {
		t.Errorf("the agent created its own socket although systemd passed one")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("agent exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("agent did not stop on SIGTERM")
	}
	if _, err := os.Stat(socket); err != nil {
		t.Errorf("the agent removed the socket systemd owns: %v", err)
	}
	if l := logs.String(); strings.Contains(l, got.AccessToken) || strings.Contains(l, tok.RefreshToken) {
		t.Errorf("the agent log holds a token")
	}
	if !strings.Contains(logs.String(), "agent started") {
		t.Errorf("agent log lacks its start line")
	}
}

// provisioned is an account "work" ready for an "ncagent run" process.
type provisioned struct {
	tok     idptest.Tokens  // of the sign-in
	kc      *agent.Keychain // holding the refresh token
	service string          // kc's service, for NCAGENT_KEYRING_SERVICE
	config  string          // config path, for NCAGENT_CONFIG
	sockDir string          // a short-pathed directory for sockets
}

// provisionAgent signs account "work" in at idp (scopes openid,
// offline_access, files), keeps its refresh token in a keychain service
// of its own (deleted at cleanup), and writes a config naming the account,
// with extra appended to its table.
func provisionAgent(t *testing.T, idp *idptest.Server, extra string) provisioned {
	t.Helper()
	p := provisioned{service: "ncagent-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	p.kc = agent.NewKeychain(p.service, 5*time.Second)
	p.tok = idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files")
	if err := p.kc.Put("work", broker.Secret(p.tok.RefreshToken)); err != nil {
		t.Fatalf("keychain put: %v", err)
	}
	t.Cleanup(func() { p.kc.Delete("work") })
	cfg := fmt.Sprintf("[accounts.work]\nkind = \"oidc\"\nserver = %[1]q\nissuer = %[1]q\nclient_id = \"ncagent\"\n", idp.Issuer()) + extra
	p.config = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.sockDir = testutil.ShortDir(t)
	return p
}
