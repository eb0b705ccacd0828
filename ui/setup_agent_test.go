package ui

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/ipc"
)

// TestSetupPageWithAgent adds an account through the setup page of the
// real agent in headless Chromium: the form names the in-process
// authorization server, the agent asks the browser to open its
// authorization URL, Chromium follows it to the agent's loopback callback,
// and the code exchange, the keychain write and the config write are the
// agent's own. Then the page shows success, the agent's status has the
// account signed in, and a client gets a token over the socket.
func TestSetupPageWithAgent(t *testing.T) {
	f := startAgent(t) // no accounts yet
	idp := idptest.New(t, idptest.Options{})
	s := NewSetupServer(f.a, SetupOptions{Logger: f.log, DoneGrace: time.Minute})
	link, err := s.Start(t.Context())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	f.secret(u.Query().Get("token"))

	t.Run("refused", func(t *testing.T) {
		noFollow := &http.Client{Timeout: waitTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		wrong := *u
		wrong.RawQuery = url.Values{"token": {strings.Repeat("A", len(u.Query().Get("token")))}}.Encode()
		none := *u
		none.RawQuery = ""
		for _, tt := range []struct{ name, url, host string }{
			{"without the token", none.String(), ""},
			{"with a wrong token", wrong.String(), ""},
			{"from a non-loopback host name", link, "ncagent.example:" + u.Port()},
		} {
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
				t.Errorf("%s: got status %d and %d cookies, want 403 and none", tt.name, resp.StatusCode, len(resp.Cookies()))
			}
		}
		st, err := f.a.Status(context.Background())
		if err != nil || len(st.Accounts) != 0 || idp.Authorizations() != 0 {
			t.Fatalf("after refused requests: got %d accounts and %d authorizations (status error %v), want none", len(st.Accounts), idp.Authorizations(), err)
		}
	})

	c := startChromium(t)
	sess := enterSetupPage(t, c, link) // the refusals did not use up the token
	form := submitSetupForm(t, c, sess, map[string]string{
		"server": idp.Issuer(), "account": "work", "method": "auto",
		"issuer": idp.Issuer(), "client_id": idptest.PublicClientID,
	})

	// The agent asks for a browser: a new tab of the same Chromium, which
	// goes through the IdP's authorization endpoint to the loopback
	// callback.
	authURL := f.nextOpened(t)
	if !strings.HasPrefix(authURL, idp.Issuer()+"/authorize?") {
		t.Fatalf("opened: got %q, want the IdP's authorization endpoint", authURL)
	}
	idpTab := c.openTab(t, authURL)
	c.waitEval(t, idpTab, "the agent's callback page", `location.pathname + " " + document.title`, "/callback Signed in ·")

	// The user closes the sign-in tab and is back on the setup page (a
	// tab in the background may not paint, so no screenshot of it).
	c.call(t, idpTab, "Page.close", nil, nil)
	c.call(t, sess, "Page.bringToFront", nil, nil)
	c.waitEval(t, sess, "success on the setup page", resultText, "Signed in to "+idp.Issuer()+" as "+idptest.DefaultSubject)
	done := c.screenshot(t, sess)

	as := f.waitState(t, "work", stateSignedIn)
	if as.Kind != "oidc" || as.Issuer != idp.Issuer() || as.User != idptest.DefaultSubject {
		t.Errorf("status: got kind %q issuer %q user %q, want oidc, %q, %q", as.Kind, as.Issuer, as.User, idp.Issuer(), idptest.DefaultSubject)
	}
	if idp.Calls("authorization_code") != 1 {
		t.Errorf("code exchanges at the IdP: got %d, want 1", idp.Calls("authorization_code"))
	}
	if !idp.RefreshTokenActive(f.storedSecret(t, "work")) {
		t.Errorf("the keychain does not hold a live refresh token for work")
	}
	tok, err := f.token(ipc.TokenRequest{Account: "work"})
	if err != nil {
		t.Fatalf("token for the new account: %v", err)
	}
	if active, _, _ := idp.Introspect(tok.AccessToken); !active || tok.Server != idp.Issuer() {
		t.Errorf("token: got active %v server %q, want an active token for %q", active, tok.Server, idp.Issuer())
	}

	// The config names the account, and holds no secret.
	cfg, _, err := agent.LoadMerged(f.cfgPath)
	if err != nil {
		t.Fatalf("load the config the agent wrote: %v", err)
	}
	ac := cfg.Accounts["work"]
	if ac == nil || ac.Kind != "oidc" || ac.Issuer != idp.Issuer() || ac.ClientID != idptest.PublicClientID {
		t.Fatalf("config account work: got %+v, want oidc at %q with client %q", ac, idp.Issuer(), idptest.PublicClientID)
	}
	statePath, err := agent.StatePathFor(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatalf("read the state file sign-in wrote: %v", err)
	}
	f.mu.Lock()
	for i, sec := range f.secrets {
		if strings.Contains(string(raw), sec) {
			t.Errorf("the config file holds secret #%d", i)
		}
	}
	f.mu.Unlock()

	out := filepath.Join(t.TempDir(), "setup-page.png")
	if *updateScreenshots {
		out = filepath.Join("..", "docs", "setup-page.png")
	}
	if err := writeSideBySide(out, form, done); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}
