package idptest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// getJSON fetches path from s and decodes the JSON body.
func getJSON(t *testing.T, s *Server, path string) map[string]any {
	t.Helper()
	resp, err := s.Client().Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", path, resp.StatusCode)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
	return m
}

// wantTokenError checks that err is a *TokenError with code.
func wantTokenError(t *testing.T, err error, code string) {
	t.Helper()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("got error %v, want token error %q", err, code)
	}
	if te.Code != code {
		t.Fatalf("got error code %q (%s), want %q", te.Code, te.Description, code)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	s := New(t, Options{})
	doc := getJSON(t, s, "/.well-known/openid-configuration")
	for key, want := range map[string]string{
		"issuer":                 s.Issuer(),
		"authorization_endpoint": s.URL + "/authorize",
		"token_endpoint":         s.URL + "/token",
		"revocation_endpoint":    s.URL + "/revoke",
		"introspection_endpoint": s.URL + "/introspect",
		"userinfo_endpoint":      s.URL + "/userinfo",
		"jwks_uri":               s.URL + "/jwks",
	} {
		if got, _ := doc[key].(string); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
	if got := doc["authorization_response_iss_parameter_supported"]; got != true {
		t.Errorf("authorization_response_iss_parameter_supported: got %v, want true", got)
	}
	for key, want := range map[string]string{
		"grant_types_supported":                 GrantTypeTokenExchange,
		"code_challenge_methods_supported":      "S256",
		"token_endpoint_auth_methods_supported": "client_secret_basic",
	} {
		list, _ := doc[key].([]any)
		if !slices.Contains(list, any(want)) {
			t.Errorf("%s: got %v, want it to contain %q", key, list, want)
		}
	}

	keys, _ := getJSON(t, s, "/jwks")["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("got %d keys, want 1", len(keys))
	}
	k := keys[0].(map[string]any)
	if k["kid"] != s.KeyID() || k["kty"] != "RSA" || k["n"] == "" {
		t.Errorf("got key %v, want RSA key with kid %q", k, s.KeyID())
	}
	if got := s.DiscoveryFetches(); got != 1 {
		t.Errorf("DiscoveryFetches: got %d, want 1", got)
	}
	if got := s.JWKSFetches(); got != 1 {
		t.Errorf("JWKSFetches: got %d, want 1", got)
	}

	s.EditDiscovery(func(doc map[string]any) { delete(doc, "revocation_endpoint") })
	if _, ok := getJSON(t, s, "/.well-known/openid-configuration")["revocation_endpoint"]; ok {
		t.Error("EditDiscovery: revocation_endpoint still served")
	}
}

func TestLoginEveryClient(t *testing.T) {
	s := New(t, Options{})
	for _, id := range []string{PublicClientID, ConfidentialClientID, PostClientID} {
		t.Run(id, func(t *testing.T) {
			tok := s.Login(t, id, "openid", "offline_access", "files")
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" {
				t.Fatal("got an empty token, want access, refresh and ID token")
			}
			if tok.ExpiresIn <= 0 || tok.ExpiresIn > 300 {
				t.Errorf("ExpiresIn: got %d, want within (0, 300]", tok.ExpiresIn)
			}
			active, scopes, _ := s.Introspect(tok.AccessToken)
			if !active || !slices.Contains(scopes, "files") {
				t.Errorf("introspect: got active=%v scopes=%q, want active with files", active, scopes)
			}
			if !s.RefreshTokenActive(tok.RefreshToken) {
				t.Error("refresh token: got inactive, want active")
			}
		})
	}
	if got := s.Calls("authorization_code"); got != 3 {
		t.Errorf("Calls(authorization_code): got %d, want 3", got)
	}
	s.ResetCalls()
	if got := s.Calls("authorization_code"); got != 0 {
		t.Errorf("after ResetCalls: got %d, want 0", got)
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	s := New(t, Options{})
	tok := s.Login(t, PublicClientID, "openid", "files")
	if tok.RefreshToken != "" {
		t.Error("got a refresh token without offline_access, want none")
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	s := New(t, Options{})
	first := s.Login(t, PublicClientID, "openid", "offline_access", "files")

	second, err := s.Refresh(PublicClientID, first.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh token was not rotated")
	}
	if s.RefreshTokenActive(first.RefreshToken) {
		t.Error("rotated refresh token: got active, want inactive")
	}
	if !s.RefreshTokenActive(second.RefreshToken) {
		t.Error("new refresh token: got inactive, want active")
	}
	if active, _, _ := s.Introspect(first.AccessToken); !active {
		t.Error("access token issued before the refresh: got inactive, want still active")
	}

	// Reuse of the rotated token: invalid_grant, and the whole family ends
	// (https://www.rfc-editor.org/rfc/rfc6819#section-5.2.2.3).
	_, err = s.Refresh(PublicClientID, first.RefreshToken)
	wantTokenError(t, err, "invalid_grant")
	if s.RefreshTokenActive(second.RefreshToken) {
		t.Error("current refresh token after reuse: got active, want revoked")
	}
	for name, at := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
		if active, _, _ := s.Introspect(at); active {
			t.Errorf("%s access token after reuse: got active, want revoked", name)
		}
	}
	_, err = s.Refresh(PublicClientID, second.RefreshToken)
	wantTokenError(t, err, "invalid_grant")
	if got := s.Calls("refresh_token"); got != 3 {
		t.Errorf("Calls(refresh_token): got %d, want 3", got)
	}
}

func TestRefreshDownScoping(t *testing.T) {
	s := New(t, Options{})
	tok := s.Login(t, PublicClientID, "openid", "offline_access", "files", "calendar")
	narrow, err := s.Refresh(PublicClientID, tok.RefreshToken, "files")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if narrow.Scope != "files" {
		t.Errorf("scope: got %q, want %q", narrow.Scope, "files")
	}
	if _, scopes, _ := s.Introspect(narrow.AccessToken); !slices.Equal(scopes, []string{"files"}) {
		t.Errorf("introspected scopes: got %q, want [files]", scopes)
	}
	// The new refresh token keeps the original grant.
	full, err := s.Refresh(PublicClientID, narrow.RefreshToken, "calendar")
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if full.Scope != "calendar" {
		t.Errorf("scope: got %q, want %q", full.Scope, "calendar")
	}
	_, err = s.Refresh(PublicClientID, full.RefreshToken, "contacts")
	wantTokenError(t, err, "invalid_scope")
}

func TestIgnoreScopeOnRefresh(t *testing.T) {
	s := New(t, Options{IgnoreScopeOnRefresh: true})
	tok := s.Login(t, PublicClientID, "openid", "offline_access", "files", "calendar")
	next, err := s.Refresh(PublicClientID, tok.RefreshToken, "files")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := strings.Fields(next.Scope); !slices.Contains(got, "calendar") {
		t.Errorf("scope: got %q, want the full original scope", next.Scope)
	}
	if active, _, _ := s.Introspect(tok.AccessToken); active {
		t.Error("access token issued before the refresh: got active, want invalidated")
	}
	third, err := s.Refresh(PublicClientID, next.RefreshToken)
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if active, _, _ := s.Introspect(next.AccessToken); active {
		t.Error("second access token after a refresh: got active, want invalidated")
	}
	if active, _, _ := s.Introspect(third.AccessToken); !active {
		t.Error("newest access token: got inactive, want active")
	}
}

func TestRevocation(t *testing.T) {
	s := New(t, Options{})
	for _, id := range []string{PublicClientID, ConfidentialClientID, PostClientID} {
		t.Run(id, func(t *testing.T) {
			tok := s.Login(t, id, "openid", "offline_access")
			form := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
			switch id {
			case PostClientID:
				form.Set("client_id", id)
				form.Set("client_secret", s.PostSecret)
			case PublicClientID:
				form.Set("client_id", id)
			}
			req, err := http.NewRequest(http.MethodPost, s.URL+"/revoke", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			if id == ConfidentialClientID {
				req.SetBasicAuth(id, s.ConfidentialSecret)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatalf("revoke: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: got status %d, want 200", resp.StatusCode)
			}
			if s.RefreshTokenActive(tok.RefreshToken) {
				t.Error("revoked refresh token: got active, want inactive")
			}
			if active, _, _ := s.Introspect(tok.AccessToken); active {
				t.Error("access token of a revoked grant: got active, want inactive")
			}
			_, err = s.Refresh(id, tok.RefreshToken)
			wantTokenError(t, err, "invalid_grant")
		})
	}
	if got := s.Revocations(); got != 3 {
		t.Errorf("Revocations: got %d, want 3", got)
	}
}
