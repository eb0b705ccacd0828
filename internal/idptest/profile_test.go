package idptest

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// redirectAccepted reports whether an authorization request with redirect
// is answered with a redirect to it.
func redirectAccepted(t *testing.T, s *Server, redirect string) bool {
	t.Helper()
	f := newFlow(PublicClientID, redirect)
	resp, err := s.noRedirectClient().Get(s.endpoint("authorize") + "?" + f.params.Encode())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return false
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Scheme+"://"+loc.Host+loc.Path == redirect
}

func TestProfileRedirectRules(t *testing.T) {
	tests := []struct {
		profile Profile
		ok      map[string]bool
	}{
		// Hydra/fosite: the port varies only for IP literals (RFC 8252 §7.3).
		{ProfileHydra, map[string]bool{"http://127.0.0.1:49152/callback": true, "http://[::1]:49152/callback": false, "http://localhost:49152/callback": false}},
		// Nextcloud oidc: http://localhost:*/callback registered.
		{ProfileNextcloudOIDC, map[string]bool{"http://localhost:49152/callback": true, "http://127.0.0.1:49152/callback": false}},
		{ProfileDex, map[string]bool{"http://localhost:49152/callback": true, "http://127.0.0.1:49152/callback": true}},
	}
	for _, tt := range tests {
		s := New(t, Options{Profile: tt.profile})
		for redirect, want := range tt.ok {
			if got := redirectAccepted(t, s, redirect); got != want {
				t.Errorf("%s: redirect %s accepted: got %v, want %v", tt.profile, redirect, got, want)
			}
		}
	}
}

func TestProfileNextcloudOIDC(t *testing.T) {
	s := New(t, Options{Profile: ProfileNextcloudOIDC})
	doc := getJSON(t, s, "/.well-known/openid-configuration")
	if got, want := doc["token_endpoint"], s.URL+"/index.php/apps/oidc/token"; got != want {
		t.Fatalf("token_endpoint: got %v, want %v", got, want)
	}
	for _, k := range []string{"revocation_endpoint", "device_authorization_endpoint"} {
		if _, ok := doc[k]; ok {
			t.Errorf("discovery has %s; the oidc app publishes none", k)
		}
	}
	tok := s.Login(t, PublicClientID, "openid", "offline_access", "profile", "files")
	if tok.Scope != "" {
		t.Errorf("code exchange scope: got %q, want none", tok.Scope)
	}
	next, err := s.Refresh(PublicClientID, tok.RefreshToken, "files")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.Scope != "" {
		t.Errorf("refresh scope: got %q, want none", next.Scope)
	}
	if s.Inspect(tok.AccessToken).Active {
		t.Error("the previous access token is still active after a refresh")
	}
	for token, want := range map[string]int{tok.AccessToken: http.StatusBadRequest, next.AccessToken: http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, s.endpoint("userinfo"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("userinfo: got HTTP %d, want %d", resp.StatusCode, want)
		}
	}
	info := s.Inspect(next.AccessToken)
	if !info.Active || !slices.Contains(info.Scopes, "profile") {
		t.Errorf("new access token: active %v scopes %v, want active with the full grant", info.Active, info.Scopes)
	}
	_, err = s.Refresh(PublicClientID, tok.RefreshToken)
	wantTokenError(t, err, "invalid_grant")
	if te := (*TokenError)(nil); errors.As(err, &te) && te.Description != NextcloudDeadRefresh {
		t.Errorf("replayed refresh token: got %q, want %q", te.Description, NextcloudDeadRefresh)
	}
	if !s.RefreshTokenActive(next.RefreshToken) {
		t.Error("a replayed refresh token revoked the grant; the oidc app only refuses it")
	}
	if _, err := s.Refresh(PublicClientID, next.RefreshToken); err != nil {
		t.Errorf("refresh after a replay: %v", err)
	}
}

func TestProfileDex(t *testing.T) {
	s := New(t, Options{Profile: ProfileDex, Subject: "CgVhbGljZRIFbG9jYWw", Username: "alice"})
	first := s.Login(t, PublicClientID)
	second := s.Login(t, PublicClientID, "openid", "offline_access", "profile")
	_, err := s.Refresh(PublicClientID, first.RefreshToken)
	wantTokenError(t, err, "invalid_request")
	var te *TokenError
	if errors.As(err, &te); te.Description != DexDeadRefresh || te.Status != http.StatusBadRequest {
		t.Errorf("dead refresh token: got %d %q, want 400 %q", te.Status, te.Description, DexDeadRefresh)
	}
	if _, err := s.Refresh(PublicClientID, second.RefreshToken); err != nil {
		t.Fatalf("the newest chain: %v", err)
	}
	if c := idClaims(t, s, first.IDToken); c["preferred_username"] != nil {
		t.Errorf("ID token without profile has preferred_username %v", c["preferred_username"])
	}
	if c := idClaims(t, s, second.IDToken); c["preferred_username"] != "alice" {
		t.Errorf("ID token with profile: preferred_username %v, want alice", c["preferred_username"])
	}
	status, body := exchangeRaw(t, s, PublicClientID, url.Values{
		"grant_type": {GrantTypeTokenExchange}, "subject_token": {second.AccessToken}, "subject_token_type": {TokenTypeAccessToken}})
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("exchange without connector_id: got %d %v, want 400 invalid_request", status, body["error"])
	}
	status, body = exchangeRaw(t, s, PublicClientID, url.Values{
		"grant_type": {GrantTypeTokenExchange}, "subject_token": {second.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "connector_id": {"local"}})
	if status != http.StatusOK {
		t.Errorf("exchange with connector_id: got %d %v, want 200", status, body["error"])
	}
}

func TestProfileHydraAndNoExchange(t *testing.T) {
	for _, opts := range []Options{{Profile: ProfileHydra}, {NoTokenExchange: true}} {
		s := New(t, opts)
		doc := getJSON(t, s, "/.well-known/openid-configuration")
		for _, g := range doc["grant_types_supported"].([]any) {
			if g == GrantTypeTokenExchange {
				t.Errorf("%+v: grant_types_supported lists token exchange", opts)
			}
		}
		tok := s.Login(t, PublicClientID, "openid", "offline_access", "files")
		status, body := exchangeRaw(t, s, PublicClientID, url.Values{
			"grant_type": {GrantTypeTokenExchange}, "subject_token": {tok.AccessToken}, "subject_token_type": {TokenTypeAccessToken}})
		if status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("%+v: exchange: got %d %v, want fosite's 400 invalid_request", opts, status, body["error"])
		}
	}
	s := New(t, Options{Profile: ProfileHydra})
	tok := s.Login(t, PublicClientID, "openid", "offline_access", "files")
	next, err := s.Refresh(PublicClientID, tok.RefreshToken, "files")
	if err != nil {
		t.Fatal(err)
	}
	if next.Scope != "openid offline_access files" {
		t.Errorf("hydra refresh scope: got %q, want the full grant", next.Scope)
	}
	if !s.Inspect(tok.AccessToken).Active {
		t.Error("hydra: the earlier access token died on refresh")
	}
}
