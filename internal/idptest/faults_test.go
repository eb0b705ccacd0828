package idptest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLifespansAndRefreshExpiresIn(t *testing.T) {
	s := New(t, Options{AccessTokenLifespan: 90 * time.Second, RefreshTokenLifespan: 15 * time.Minute, SendRefreshExpiresIn: true})
	f := newFlow(PublicClientID, LoginRedirectURI)
	code := f.authorize(t, s).Query().Get("code")
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {LoginRedirectURI},
		"code_verifier": {f.verifier}, "client_id": {PublicClientID},
	}
	resp, err := s.Client().PostForm(s.URL+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		ExpiresIn        int    `json:"expires_in"`
		RefreshExpiresIn int    `json:"refresh_expires_in"`
		RefreshToken     string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.ExpiresIn < 85 || body.ExpiresIn > 90 {
		t.Errorf("expires_in: got %d, want about 90", body.ExpiresIn)
	}
	if body.RefreshExpiresIn != 900 {
		t.Errorf("refresh_expires_in: got %d, want 900", body.RefreshExpiresIn)
	}
	info := s.Inspect(body.RefreshToken)
	if left := time.Until(info.ExpiresAt); left < 14*time.Minute || left > 15*time.Minute+time.Second {
		t.Errorf("refresh token expires in %v, want about 15m", left)
	}
}

func TestConcurrentRefreshIsReuse(t *testing.T) {
	s := New(t, Options{Latency: 20 * time.Millisecond})
	tok := s.Login(t, PublicClientID, "openid", "offline_access")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Refresh(PublicClientID, tok.RefreshToken)
		}()
	}
	wg.Wait()
	var failed int
	for _, err := range errs {
		if err != nil {
			wantTokenError(t, err, "invalid_grant")
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("got %d failed refreshes, want exactly 1", failed)
	}
	if got := s.Calls("refresh_token"); got != 2 {
		t.Errorf("Calls(refresh_token): got %d, want 2", got)
	}
}

func TestFault(t *testing.T) {
	s := New(t, Options{})
	tok := s.Login(t, PublicClientID, "openid", "offline_access")
	s.ResetCalls()
	s.Fault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" || r.PostForm.Get("grant_type") != "refresh_token" {
			return false
		}
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return true
	})
	_, err := s.Refresh(PublicClientID, tok.RefreshToken)
	var te *TokenError
	if !errors.As(err, &te) || te.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want status 503", err)
	}
	if got := s.Calls("refresh_token"); got != 1 {
		t.Errorf("Calls(refresh_token): got %d, want 1", got)
	}
	if !s.RefreshTokenActive(tok.RefreshToken) {
		t.Error("refresh token after a faulted refresh: got inactive, want untouched")
	}
	getJSON(t, s, "/jwks") // other endpoints pass through
	s.Fault(nil)
	if _, err := s.Refresh(PublicClientID, tok.RefreshToken); err != nil {
		t.Fatalf("refresh after removing the fault: %v", err)
	}
}

func TestLatency(t *testing.T) {
	s := New(t, Options{})
	s.SetLatency(50 * time.Millisecond)
	start := time.Now()
	getJSON(t, s, "/jwks")
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("request took %v, want at least 50ms", took)
	}
}

func TestTLS(t *testing.T) {
	s := New(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL: got %q, want https", s.URL)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM: no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery over TLS with CAPEM: %v", err)
	}
	resp.Body.Close()
	if _, err := http.Get(s.URL + "/jwks"); err == nil {
		t.Error("got success without trusting CAPEM, want a certificate error")
	}
	if tok := s.Login(t, ConfidentialClientID, "openid", "offline_access"); tok.RefreshToken == "" {
		t.Error("login over TLS: got no refresh token")
	}
	if New(t, Options{}).CAPEM() != nil {
		t.Error("CAPEM without TLS: got a certificate, want nil")
	}
}

func TestIntrospectionAndUserinfoEndpoints(t *testing.T) {
	s := New(t, Options{})
	tok := s.Login(t, PublicClientID, "openid", "offline_access", "email", "files")

	form := url.Values{"token": {tok.AccessToken}}
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(ConfidentialClientID, s.ConfidentialSecret)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var intro map[string]any
	err = json.NewDecoder(resp.Body).Decode(&intro)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if intro["active"] != true || intro["sub"] != DefaultSubject || intro["client_id"] != PublicClientID {
		t.Errorf("introspection: got active=%v sub=%v client_id=%v, want true %q %q", intro["active"], intro["sub"], intro["client_id"], DefaultSubject, PublicClientID)
	}

	req, _ = http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info["sub"] != DefaultSubject || info["email"] != DefaultSubject+"@example.com" {
		t.Errorf("userinfo: got sub=%v email=%v, want %q with email", info["sub"], info["email"], DefaultSubject)
	}
}

func TestExpire(t *testing.T) {
	s := New(t, Options{})
	tok := s.Login(t, PublicClientID, "openid", "offline_access")
	if !s.Expire(tok.AccessToken) {
		t.Fatal("Expire(access token): got false, want true")
	}
	if active, _, _ := s.Introspect(tok.AccessToken); active {
		t.Error("expired access token: got active, want inactive")
	}
	if !s.RefreshTokenActive(tok.RefreshToken) {
		t.Fatal("refresh token after expiring the access token: got inactive, want active")
	}
	next, err := s.Refresh(PublicClientID, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if !s.Expire(next.RefreshToken) {
		t.Fatal("Expire(refresh token): got false, want true")
	}
	if s.RefreshTokenActive(next.RefreshToken) {
		t.Error("expired refresh token: got active, want inactive")
	}
	_, err = s.Refresh(PublicClientID, next.RefreshToken)
	wantTokenError(t, err, "invalid_grant")
	if active, _, _ := s.Introspect(next.AccessToken); !active {
		t.Error("access token of the expired refresh token: got inactive, want still active")
	}
	if s.Expire(tok.RefreshToken) {
		t.Error("Expire(used refresh token): got true, want false")
	}
	if s.Expire("ory_at_bogus.bogus") {
		t.Error("Expire(unknown): got true, want false")
	}
}

func TestSharedKey(t *testing.T) {
	a := New(t, Options{})
	b := New(t, Options{Key: a.Key()})
	if !b.Key().Equal(a.Key()) {
		t.Fatal("Options.Key: got another key, want the given one")
	}
	if a.KeyID() == b.KeyID() {
		t.Error("KeyID: got the same kid on two servers, want one per server")
	}
	tok := b.Login(t, PublicClientID, "openid")
	idClaims(t, b, tok.IDToken)
}
