package nctest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// start begins a login flow as a client does and returns its answer.
func start(t *testing.T, s *Server) (pollToken, endpoint, login string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/index.php/login/v2", nil)
	req.Header.Set("User-Agent", "ncagent (testhost)")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start: got HTTP %d, want 200", resp.StatusCode)
	}
	var doc struct {
		Poll struct {
			Token    string `json:"token"`
			Endpoint string `json:"endpoint"`
		} `json:"poll"`
		Login string `json:"login"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("start: decode: %v", err)
	}
	if doc.Poll.Token == "" || doc.Login == "" || !strings.HasPrefix(doc.Poll.Endpoint, s.URL+"/") {
		t.Fatalf("start: incomplete answer (endpoint %q)", doc.Poll.Endpoint)
	}
	return doc.Poll.Token, doc.Poll.Endpoint, doc.Login
}

type credentials struct {
	Server      string `json:"server"`
	LoginName   string `json:"loginName"`
	AppPassword string `json:"appPassword"`
}

// poll polls once and returns the status and, on 200, the credentials.
func poll(t *testing.T, s *Server, endpoint, token string) (int, credentials) {
	t.Helper()
	resp, err := s.Client().PostForm(endpoint, url.Values{"token": {token}})
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	defer resp.Body.Close()
	var c credentials
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			t.Fatalf("poll: decode: %v", err)
		}
	}
	return resp.StatusCode, c
}

// ocsRequest sends an OCS request with Basic credentials.
func ocsRequest(t *testing.T, s *Server, method, path, user, pass string, header bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+path, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if header {
		req.Header.Set("OCS-APIRequest", "true")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const userPath = "/ocs/v2.php/cloud/user?format=json"

func TestLoginFlow(t *testing.T) {
	s := New(t, Options{DisplayName: "Alice L."})
	token, endpoint, login := start(t, s)

	// Pending: 404, as often as the client asks.
	for range 2 {
		if got, _ := poll(t, s, endpoint, token); got != http.StatusNotFound {
			t.Fatalf("pending poll: got HTTP %d, want 404", got)
		}
	}
	if err := s.Grant(login); err != nil {
		t.Fatalf("grant: %v", err)
	}
	// A wrong poll token gets nothing, even for a granted flow.
	if got, _ := poll(t, s, endpoint, "not-"+token); got != http.StatusNotFound {
		t.Errorf("poll with a wrong token: got HTTP %d, want 404", got)
	}
	status, c := poll(t, s, endpoint, token)
	if status != http.StatusOK {
		t.Fatalf("poll after grant: got HTTP %d, want 200", status)
	}
	if c.Server != s.URL || c.LoginName != DefaultLoginName || c.AppPassword == "" {
		t.Errorf("credentials: got server %q login %q, want %q %q and a password", c.Server, c.LoginName, s.URL, DefaultLoginName)
	}
	// "Note that the 200 will only be returned once."
	if got, _ := poll(t, s, endpoint, token); got != http.StatusNotFound {
		t.Errorf("second poll after grant: got HTTP %d, want 404", got)
	}
	if !s.Valid(c.AppPassword) || len(s.AppPasswords()) != 1 {
		t.Errorf("the granted app password is not listed as valid")
	}
	if got := s.UserAgents(); len(got) != 1 || got[0] != "ncagent (testhost)" {
		t.Errorf("user agents: got %q, want [%q]", got, "ncagent (testhost)")
	}
	for ep, want := range map[string]int{EndpointStart: 1, EndpointPage: 1, EndpointGrant: 1, EndpointPoll: 5} {
		if got := s.Calls(ep); got != want {
			t.Errorf("calls %s: got %d, want %d", ep, got, want)
		}
	}

	// The OCS user endpoint with the new app password.
	status, body := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, c.AppPassword, true)
	if status != http.StatusOK {
		t.Fatalf("cloud/user: got HTTP %d, want 200", status)
	}
	var doc struct {
		OCS struct {
			Data struct {
				ID          string `json:"id"`
				DisplayName string `json:"display-name"`
			} `json:"data"`
		} `json:"ocs"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("cloud/user: decode: %v", err)
	}
	if doc.OCS.Data.ID != DefaultLoginName || doc.OCS.Data.DisplayName != "Alice L." {
		t.Errorf("cloud/user: got id %q display name %q, want %q %q", doc.OCS.Data.ID, doc.OCS.Data.DisplayName, DefaultLoginName, "Alice L.")
	}

	// Refusals: no header, wrong password, no credentials.
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, c.AppPassword, false); got != http.StatusBadRequest {
		t.Errorf("cloud/user without OCS-APIRequest: got HTTP %d, want 400", got)
	}
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, "wrong-password", true); got != http.StatusUnauthorized {
		t.Errorf("cloud/user with a wrong password: got HTTP %d, want 401", got)
	}
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, "", "", true); got != http.StatusUnauthorized {
		t.Errorf("cloud/user without credentials: got HTTP %d, want 401", got)
	}

	// A forced 401, once.
	s.FailVerifications(1)
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, c.AppPassword, true); got != http.StatusUnauthorized {
		t.Errorf("cloud/user after FailVerifications(1): got HTTP %d, want 401", got)
	}
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, c.AppPassword, true); got != http.StatusOK {
		t.Errorf("cloud/user after the forced 401: got HTTP %d, want 200", got)
	}

	// Deleting the app password: then it no longer works.
	if got, _ := ocsRequest(t, s, http.MethodDelete, "/ocs/v2.php/core/apppassword?format=json", c.LoginName, c.AppPassword, true); got != http.StatusOK {
		t.Fatalf("delete app password: got HTTP %d, want 200", got)
	}
	if s.Valid(c.AppPassword) {
		t.Errorf("the deleted app password is still valid")
	}
	if got, _ := ocsRequest(t, s, http.MethodGet, userPath, c.LoginName, c.AppPassword, true); got != http.StatusUnauthorized {
		t.Errorf("cloud/user with the deleted password: got HTTP %d, want 401", got)
	}
	if got, _ := ocsRequest(t, s, http.MethodDelete, "/ocs/v2.php/core/apppassword?format=json", c.LoginName, c.AppPassword, true); got != http.StatusUnauthorized {
		t.Errorf("deleting it again: got HTTP %d, want 401", got)
	}
	if got := s.Calls(EndpointDelete); got != 2 {
		t.Errorf("delete calls: got %d, want 2", got)
	}
}

func TestLoginFlowExpires(t *testing.T) {
	clock := testutil.NewClock(time.Now())
	s := New(t, Options{FlowLifetime: time.Minute, Now: clock.Now})

	// Granted in time, polled too late: gone.
	token, endpoint, login := start(t, s)
	if err := s.Grant(login); err != nil {
		t.Fatalf("grant: %v", err)
	}
	clock.Advance(time.Minute)
	if got, _ := poll(t, s, endpoint, token); got != http.StatusNotFound {
		t.Errorf("poll of an expired, granted flow: got HTTP %d, want 404", got)
	}

	// Opened too late: the page refuses and nothing is issued.
	token, endpoint, login = start(t, s)
	clock.Advance(time.Minute + time.Second)
	if err := s.Grant(login); err == nil {
		t.Errorf("granting an expired flow: got no error")
	}
	if got, _ := poll(t, s, endpoint, token); got != http.StatusNotFound {
		t.Errorf("poll of an expired flow: got HTTP %d, want 404", got)
	}
	if got := len(s.AppPasswords()); got != 1 {
		t.Errorf("app passwords issued: got %d, want 1 (the flow granted in time)", got)
	}
}

func TestLoginFlowDenied(t *testing.T) {
	s := New(t, Options{})
	token, endpoint, login := start(t, s)
	if err := s.Deny(login); err != nil {
		t.Fatalf("deny: %v", err)
	}
	if got, _ := poll(t, s, endpoint, token); got != http.StatusNotFound {
		t.Errorf("poll after deny: got HTTP %d, want 404", got)
	}
	if err := s.Grant(login); err == nil {
		t.Errorf("granting a denied flow: got no error")
	}
	if got := len(s.AppPasswords()); got != 0 {
		t.Errorf("app passwords issued: got %d, want 0", got)
	}
}
