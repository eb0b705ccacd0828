package agent

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// TestSignInProviderProfiles signs in through the agent against each
// provider profile: the default redirect host is the one the provider
// accepts, the other one times out with a message naming the redirect URI,
// the user name is readable, and the sign-in's token serves the first
// request.
func TestSignInProviderProfiles(t *testing.T) {
	tests := []struct {
		name         string
		opts         idptest.Options
		redirectHost string
		wantHost     string // of the redirect URI
		wantErr      bool
		wantUser     string
	}{
		{name: "nextcloud-oidc default", opts: idptest.Options{Profile: idptest.ProfileNextcloudOIDC}, wantHost: "localhost", wantUser: idptest.DefaultSubject},
		{name: "nextcloud-oidc 127.0.0.1", opts: idptest.Options{Profile: idptest.ProfileNextcloudOIDC}, redirectHost: "127.0.0.1", wantHost: "127.0.0.1", wantErr: true},
		{name: "hydra default", opts: idptest.Options{Profile: idptest.ProfileHydra}, wantHost: "127.0.0.1", wantUser: idptest.DefaultSubject},
		{name: "hydra localhost", opts: idptest.Options{Profile: idptest.ProfileHydra}, redirectHost: "localhost", wantHost: "localhost", wantErr: true},
		// Dex: an opaque subject; the name comes from profile.
		{name: "dex", opts: idptest.Options{Profile: idptest.ProfileDex, Subject: "CgVhbGljZRIFbG9jYWw", Username: "alice"}, wantHost: "127.0.0.1", wantUser: "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startLoginRig(t, loginRigOptions{idp: tt.opts, signInTimeout: 2 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), loginWait)
			defer cancel()
			var redirect string
			res := r.login(ctx, ipc.LoginRequest{Account: "dev", Method: MethodBrowser, Server: r.idp.Issuer(),
				ClientID: idptest.PublicClientID, Scopes: ipc.Scopes{"files"}, RedirectHost: tt.redirectHost}, func(u string) pageSeen {
				redirect = redirectURIOf(u)
				return authorizeThen(nil)(u)
			})
			if !strings.HasPrefix(redirect, "http://"+tt.wantHost+":") {
				t.Errorf("redirect URI %q, want host %s", redirect, tt.wantHost)
			}
			if tt.wantErr {
				wantWireError(t, res.err, ipc.CodeTimeout, "did not come back to "+redirect, "--redirect-host")
				return
			}
			if res.err != nil {
				t.Fatalf("login: %v", res.err)
			}
			if res.final.User != tt.wantUser {
				t.Errorf("user: got %q, want %q", res.final.User, tt.wantUser)
			}
			r.idp.ResetCalls()
			r.tokenWorks(t, "dev")
			if got := r.idp.Calls("refresh_token"); got != 0 {
				t.Errorf("the first token after sign-in made %d refreshes, want 0", got)
			}
			// The redirect host given is kept for the next sign-in.
			if tt.redirectHost != "" {
				cfg, _, _ := LoadConfig(r.cfgPath)
				if got := cfg.Accounts["dev"].RedirectHost; got != tt.redirectHost {
					t.Errorf("config redirect_host: got %q, want %q", got, tt.redirectHost)
				}
			}
		})
	}
}

// TestSignInUsesEditedConfig: a running agent reads config.toml at every
// sign-in, so an edited redirect_host takes effect without a restart.
func TestSignInUsesEditedConfig(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{idp: idptest.Options{Profile: idptest.ProfileHydra}, signInTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	// The agent's own view says 127.0.0.1 after this sign-in ...
	res := r.login(ctx, ipc.LoginRequest{Account: "work", Method: MethodBrowser, Server: r.idp.Issuer(),
		ClientID: idptest.PublicClientID, RedirectHost: "127.0.0.1"}, authorizeThen(nil))
	if res.err != nil {
		t.Fatal(res.err)
	}
	// ... then the user edits config.toml (sign-in recorded the account in
	// the state file; config.toml's value wins over it).
	old, err := os.ReadFile(r.cfgPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	edited := append(old, "\n[accounts.work]\nredirect_host = \"localhost\"\n"...)
	if err := os.WriteFile(r.cfgPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	var redirect string
	r.login(ctx, ipc.LoginRequest{Account: "work"}, func(u string) pageSeen {
		redirect = redirectURIOf(u)
		return pageSeen{}
	})
	if !strings.HasPrefix(redirect, "http://localhost:") {
		t.Errorf("redirect URI %q after editing redirect_host to localhost", redirect)
	}
}

// redirectURIOf returns the redirect_uri parameter of an authorization URL.
func redirectURIOf(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("redirect_uri")
}
