package agent

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// TestLoginPanicKeepsAgent: a sign-in that panics (here its browser
// opener, with the authorization URL in the panic value) ends with an
// internal error; the agent keeps serving, logs the stack, not the URL,
// and the account can sign in again.
func TestLoginPanicKeepsAgent(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	var authURL string
	r.agent.opts.OpenURL = func(u string) error {
		authURL = u
		panic("cannot open " + u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	req := ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(), ClientID: idptest.PublicClientID, OpenBrowser: true}
	_, err := r.client.Login(ctx, req, func(ipc.LoginEvent) {})
	wantWireError(t, err, ipc.CodeInternal, "internal error")
	if _, err := r.client.Status(ctx); err != nil {
		t.Fatalf("status after the panic: %v", err)
	}
	logs := r.logs.String()
	if !strings.Contains(logs, "recovered from a panic") || !strings.Contains(logs, "login_recover_test.go") {
		t.Errorf("the panic and its stack are not logged:\n%s", logs)
	}
	u, _ := url.Parse(authURL)
	if st := u.Query().Get("state"); st == "" || strings.Contains(logs, st) {
		t.Errorf("the log holds the authorization URL's state (or there was none)")
	}

	r.agent.opts.OpenURL = func(string) error { return nil }
	res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(), ClientID: idptest.PublicClientID},
		authorizeThen(nil))
	if res.err != nil {
		t.Errorf("sign-in after the panic: %v", res.err)
	}
}

// TestLoginIssuerOnlyMessage: an account with an issuer and no server
// says where it signed in ("signed in to  as alice" before).
func TestLoginIssuerOnlyMessage(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Issuer: r.idp.Issuer(), ClientID: idptest.PublicClientID},
		authorizeThen(nil))
	if res.err != nil {
		t.Fatalf("login: %v", res.err)
	}
	if want := "signed in to " + r.idp.Issuer() + " as "; !strings.HasPrefix(res.final.Message, want) {
		t.Errorf("message: got %q, want it to start with %q", res.final.Message, want)
	}
}
