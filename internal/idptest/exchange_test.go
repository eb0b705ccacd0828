package idptest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// exchangeRaw posts a token exchange request as clientID ("" sends form
// as it is) and returns the status and decoded body.
func exchangeRaw(t *testing.T, s *Server, clientID string, form url.Values) (int, map[string]any) {
	t.Helper()
	form.Set("grant_type", GrantTypeTokenExchange)
	switch clientID {
	case "", ConfidentialClientID:
	case PostClientID:
		form.Set("client_id", clientID)
		form.Set("client_secret", s.PostSecret)
	default:
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if clientID == ConfidentialClientID {
		req.SetBasicAuth(clientID, s.ConfidentialSecret)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token exchange: decode: %v", err)
	}
	return resp.StatusCode, body
}

func TestTokenExchange(t *testing.T) {
	s := New(t, Options{})
	login := s.Login(t, PublicClientID, "openid", "offline_access", "files", "mcp")
	jwtSubject := s.MintJWT(t, jwt.MapClaims{
		"iss": s.Issuer(), "sub": "carol", "aud": "mcp-server", "scope": "mcp files",
		"exp": time.Now().Add(time.Minute).Unix(),
	})

	tests := []struct {
		name      string
		client    string
		form      url.Values
		wantSub   string
		wantScope []string
		wantAud   []string
		wantAct   string
	}{
		{
			name:   "pure, access token subject",
			client: PublicClientID,
			form: url.Values{
				"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken},
				"audience": {"nextcloud"}, "scope": {"files"},
			},
			wantSub: DefaultSubject, wantScope: []string{"files"}, wantAud: []string{"nextcloud"},
		},
		{
			name:   "pure, jwt subject, scope defaulted",
			client: ConfidentialClientID,
			form: url.Values{
				"subject_token": {jwtSubject}, "subject_token_type": {TokenTypeJWT},
				"audience": {"nextcloud"},
			},
			wantSub: "carol", wantScope: []string{"mcp", "files"}, wantAud: []string{"nextcloud"},
		},
		{
			name:   "delegation",
			client: PostClientID,
			form: url.Values{
				"subject_token": {jwtSubject}, "subject_token_type": {TokenTypeJWT},
				"actor_token": {login.AccessToken}, "actor_token_type": {TokenTypeAccessToken},
				"audience": {"files-api"}, "scope": {"mcp"},
			},
			wantSub: "carol", wantScope: []string{"mcp"}, wantAud: []string{"files-api"}, wantAct: DefaultSubject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := exchangeRaw(t, s, tt.client, tt.form)
			if status != http.StatusOK {
				t.Fatalf("got status %d (%v), want 200", status, body["error"])
			}
			if got := body["issued_token_type"]; got != TokenTypeAccessToken {
				t.Errorf("issued_token_type: got %v, want %q", got, TokenTypeAccessToken)
			}
			if got := body["token_type"]; got != "Bearer" {
				t.Errorf("token_type: got %v, want %q", got, "Bearer")
			}
			if got, _ := body["expires_in"].(float64); got <= 0 || got > 300 {
				t.Errorf("expires_in: got %v, want within (0, 300]", got)
			}
			if got := strings.Fields(body["scope"].(string)); !slices.Equal(got, tt.wantScope) {
				t.Errorf("scope: got %q, want %q", got, tt.wantScope)
			}
			if _, ok := body["refresh_token"]; ok {
				t.Error("got a refresh token from token exchange, want none")
			}
			token, _ := body["access_token"].(string)
			info := s.Inspect(token)
			if !info.Active || info.Use != "access_token" {
				t.Fatalf("issued token: got active=%v use=%q, want an active access token", info.Active, info.Use)
			}
			if info.Subject != tt.wantSub {
				t.Errorf("sub: got %q, want %q", info.Subject, tt.wantSub)
			}
			if !slices.Equal(info.Scopes, tt.wantScope) {
				t.Errorf("scopes: got %q, want %q", info.Scopes, tt.wantScope)
			}
			if !slices.Equal(info.Audience, tt.wantAud) {
				t.Errorf("aud: got %q, want %q", info.Audience, tt.wantAud)
			}
			var act string
			if m, ok := info.Extra["act"].(map[string]any); ok {
				act, _ = m["sub"].(string)
			}
			if act != tt.wantAct {
				t.Errorf("act.sub: got %q, want %q", act, tt.wantAct)
			}
		})
	}
	if got := s.Calls(GrantTypeTokenExchange); got != len(tests) {
		t.Errorf("Calls(token exchange): got %d, want %d", got, len(tests))
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	s := New(t, Options{})
	login := s.Login(t, PublicClientID, "openid", "offline_access", "files")
	other := New(t, Options{})
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": s.Issuer(), "sub": "carol", "scope": "files", "exp": time.Now().Add(time.Minute).Unix()}
		mod(c)
		return c
	}
	revoked := s.Login(t, PublicClientID, "openid", "offline_access", "files")
	if _, err := s.Refresh(PublicClientID, revoked.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(PublicClientID, revoked.RefreshToken); err == nil {
		t.Fatal("reuse: got no error, want invalid_grant")
	}

	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"unknown access token", url.Values{"subject_token": {"ory_at_bogus.bogus"}, "subject_token_type": {TokenTypeAccessToken}}, "invalid_grant"},
		{"revoked access token", url.Values{"subject_token": {revoked.AccessToken}, "subject_token_type": {TokenTypeAccessToken}}, "invalid_grant"},
		{"refresh token as access token", url.Values{"subject_token": {login.RefreshToken}, "subject_token_type": {TokenTypeAccessToken}}, "invalid_grant"},
		{"jwt of another key", url.Values{"subject_token": {other.MintJWT(t, claims(func(c jwt.MapClaims) { c["iss"] = s.Issuer() }))}, "subject_token_type": {TokenTypeJWT}}, "invalid_grant"},
		{"jwt of another issuer", url.Values{"subject_token": {s.MintJWT(t, claims(func(c jwt.MapClaims) { c["iss"] = other.Issuer() }))}, "subject_token_type": {TokenTypeJWT}}, "invalid_grant"},
		{"jwt expired", url.Values{"subject_token": {s.MintJWT(t, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }))}, "subject_token_type": {TokenTypeJWT}}, "invalid_grant"},
		{"jwt without exp", url.Values{"subject_token": {s.MintJWT(t, claims(func(c jwt.MapClaims) { delete(c, "exp") }))}, "subject_token_type": {TokenTypeJWT}}, "invalid_grant"},
		{"invalid actor", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "actor_token": {"nope"}, "actor_token_type": {TokenTypeJWT}}, "invalid_grant"},
		{"scope beyond subject", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "scope": {"files calendar"}}, "invalid_scope"},
		{"audience not allowed", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "audience": {"elsewhere"}}, "invalid_target"},
		{"missing subject", url.Values{"subject_token_type": {TokenTypeAccessToken}}, "invalid_request"},
		{"missing subject type", url.Values{"subject_token": {login.AccessToken}}, "invalid_request"},
		{"unsupported subject type", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}, "invalid_request"},
		{"actor type without actor", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "actor_token_type": {TokenTypeJWT}}, "invalid_request"},
		{"unsupported requested type", url.Values{"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken}, "requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := exchangeRaw(t, s, PublicClientID, tt.form)
			if status != http.StatusBadRequest {
				t.Errorf("status: got %d, want 400", status)
			}
			if got := body["error"]; got != tt.want {
				t.Errorf("error: got %v (%v), want %q", got, body["error_description"], tt.want)
			}
		})
	}

	t.Run("unauthenticated confidential client", func(t *testing.T) {
		status, body := exchangeRaw(t, s, "", url.Values{
			"client_id":     {ConfidentialClientID},
			"subject_token": {login.AccessToken}, "subject_token_type": {TokenTypeAccessToken},
		})
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("got status %d error %v, want 401 invalid_client", status, body["error"])
		}
	})
}

func TestTokenExchangeSubjectTokenError(t *testing.T) {
	s := New(t, Options{SubjectTokenError: "invalid_request"})
	_, body := exchangeRaw(t, s, PublicClientID, url.Values{"subject_token": {"bogus"}, "subject_token_type": {TokenTypeAccessToken}})
	if got := body["error"]; got != "invalid_request" {
		t.Errorf("error: got %v, want %q", got, "invalid_request")
	}
}
