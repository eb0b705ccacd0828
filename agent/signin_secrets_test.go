package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/internal/idptest"
)

// leakCheck collects everything a sign-in shows the outside world:
// progress events, errors, pages, result strings and slog output.
type leakCheck struct {
	texts []string
	names []string // what each text is, for failure messages
}

func (l *leakCheck) add(name, text string) {
	l.names = append(l.names, name)
	l.texts = append(l.texts, text)
}

func (l *leakCheck) addEvents(log *eventLog) {
	for i, ev := range log.all() {
		b, _ := json.Marshal(ev)
		l.add(fmt.Sprintf("event %d (%s)", i, ev.Type), string(b))
	}
}

// assertNone fails when any collected text contains a secret. It names the
// secret and the text, never the value.
func (l *leakCheck) assertNone(t *testing.T, secrets map[string]string) {
	t.Helper()
	for what, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("secret %s: too short to search for", what)
		}
		for i, text := range l.texts {
			if strings.Contains(text, v) {
				t.Errorf("%s contains the %s", l.names[i], what)
			}
		}
	}
}

// captureSlog routes the default logger into a buffer for the test.
func captureSlog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// TestSignInNoSecretLeaks runs each flow to success and to failure and
// checks that no refresh token, access token, ID token, code, PKCE
// verifier, device code, poll token or app password appears in a progress
// event, an error, a page, a printed result or the log.
func TestSignInNoSecretLeaks(t *testing.T) {
	logs := captureSlog(t)
	var l leakCheck
	secrets := map[string]string{}

	t.Run("browser", func(t *testing.T) {
		s := idptest.New(t, idptest.Options{})
		log := newEventLog()
		authURL, done := startBrowser(t, context.Background(), browserRequest(t, s, log), log)
		// The browser records the code it carries to the callback.
		var code string
		c := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if v := req.URL.Query().Get("code"); v != "" {
				code = v
			}
			return nil
		}}
		resp, err := c.Get(authURL)
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
		var page bytes.Buffer
		page.ReadFrom(resp.Body)
		resp.Body.Close()
		out := wait(t, done)
		if out.err != nil {
			t.Fatalf("signInBrowser: %v", out.err)
		}
		if code == "" {
			t.Fatal("the browser carried no code to the callback")
		}
		secrets["browser refresh token"] = out.res.Secret.Reveal()
		secrets["browser access token"] = out.res.Initial.AccessToken.Reveal()
		secrets["authorization code"] = code
		l.add("success page", page.String())
		l.addEvents(log)
		l.add("result %v", fmt.Sprintf("%v", out.res))
		l.add("result %+v", fmt.Sprintf("%+v", out.res))
		l.add("result %#v", fmt.Sprintf("%#v", out.res))
		l.add("initial token", fmt.Sprintf("%v %+v", out.res.Initial, *out.res.Initial))

		// A failing exchange: the code is replayed, which the server refuses.
		log2 := newEventLog()
		authURL2, done2 := startBrowser(t, context.Background(), browserRequest(t, s, log2), log2)
		cb := redirectURI(t, authURL2)
		au, _ := url.Parse(authURL2)
		cb.RawQuery = url.Values{"code": {code}, "state": {au.Query().Get("state")}, "iss": {s.Issuer()}}.Encode()
		p := browse(t, cb.String())
		out2 := wait(t, done2)
		if out2.err == nil {
			t.Fatal("replayed code: got success, want an error")
		}
		l.add("replayed code page", p.body)
		l.add("replayed code error", out2.err.Error())
		l.addEvents(log2)
	})

	t.Run("device", func(t *testing.T) {
		secrets["device code"] = testDeviceCode
		secrets["device refresh token"] = testRefreshToken
		secrets["device access token"] = testAccessToken
		for _, script := range [][]string{{"pending", "ok"}, {"ok-no-refresh"}, {"denied"}, {"ok-bad-aud"}} {
			d := newDeviceIdP(t, script...)
			log := newEventLog()
			res, err := signInDevice(context.Background(), deviceRequest(t, d, newFakeClock(), log))
			if err != nil {
				l.add("device error "+script[0], err.Error())
			}
			l.add("device result "+script[0], fmt.Sprintf("%v %+v %#v", res, res, res))
			l.addEvents(log)
		}
	})

	t.Run("app password", func(t *testing.T) {
		secrets["poll token"] = testPollToken
		secrets["app password"] = testAppPassword
		for _, verify := range []int{0, http.StatusUnauthorized} {
			nc := newNextcloud(t, 1)
			nc.verifyCode = verify
			log := newEventLog()
			res, err := signInAppPassword(context.Background(), loginFlowRequest(t, nc, newFakeClock(), log))
			if err != nil {
				l.add("app password error", err.Error())
			}
			l.add("app password result", fmt.Sprintf("%v %+v %#v", res, res, res))
			l.addEvents(log)
		}
	})

	l.add("slog output", logs.String())
	l.assertNone(t, secrets)
}

// TestSignInPollTokenRedacted: the Login Flow v2 poll token is a
// broker.Secret, so printing the start response does not show it.
func TestSignInPollTokenRedacted(t *testing.T) {
	var init loginFlowInit
	if err := json.Unmarshal([]byte(`{"poll":{"token":"`+testPollToken+`","endpoint":"https://c.example/login/v2/poll"},"login":"https://c.example/login/v2/flow/x"}`), &init); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", init), fmt.Sprintf("%+v", init), fmt.Sprintf("%#v", init)} {
		if strings.Contains(s, testPollToken) {
			t.Error("printed login flow start response contains the poll token")
		}
	}
}

// TestSignInChooseMethod covers the three outcomes of chooseMethod.
func TestSignInChooseMethod(t *testing.T) {
	idp := idptest.New(t, idptest.Options{})
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	tests := []struct {
		name                   string
		server, issuer, client string
		wantMethod             string
		wantReason             []string
	}{
		{"oidc with client", "https://cloud.invalid", idp.Issuer(), "ncagent", MethodBrowser, []string{"OpenID Connect", `"ncagent"`, "browser"}},
		{"oidc server without client", idp.URL, "", "", MethodAppPassword, []string{"no client id", "occ oidc:create", "--client-id"}},
		{"no discovery", plain.URL, "", "ncagent", MethodAppPassword, []string{"HTTP 404", "works on every stock Nextcloud"}},
		{"unreachable", gone.URL, "", "", MethodAppPassword, []string{"unreachable", "works on every stock Nextcloud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, reason := chooseMethod(context.Background(), testHTTPClient(t), tt.server, tt.issuer, tt.client)
			if method != tt.wantMethod {
				t.Errorf("method: got %q, want %q (reason %q)", method, tt.wantMethod, reason)
			}
			for _, want := range tt.wantReason {
				if !strings.Contains(reason, want) {
					t.Errorf("reason: got %q, want it to contain %q", reason, want)
				}
			}
		})
	}
}
