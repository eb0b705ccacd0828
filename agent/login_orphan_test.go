package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// TestLoginNewAccountConfigNotSaved: adding an account whose config cannot
// be saved leaves no secret in the keychain and no grant at the provider.
func TestLoginNewAccountConfigNotSaved(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	// The config directory becomes a file: no write can succeed there, not
	// even as root.
	dir := filepath.Dir(r.cfgPath)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(),
		ClientID: idptest.PublicClientID, Scopes: ipc.Scopes{"files"}}, authorizeThen(nil))
	wantWireError(t, res.err, ipc.CodeInternal, "config could not be saved", "sign-in was undone", "run ncagent login dev again")
	if _, err := r.kc.Get("dev"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("keychain get dev: got %v, want ErrNotFound (no orphaned secret)", err)
	}
	if got := r.idp.Revocations(); got != 1 {
		t.Errorf("got %d revocations at the provider, want 1 (the new grant)", got)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.Accounts {
		if a.Name == "dev" && a.State == "signed-in" {
			t.Errorf("account dev is still signed in")
		}
	}
}
