package idptest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// flow is one hand-driven authorization code flow.
type flow struct {
	verifier, state, nonce string
	params                 url.Values
}

func newFlow(clientID, redirect string) *flow {
	f := &flow{verifier: randomHex(32), state: randomHex(16), nonce: randomHex(16)}
	sum := sha256.Sum256([]byte(f.verifier))
	f.params = url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"scope":                 {"openid offline_access"},
		"state":                 {f.state},
		"nonce":                 {f.nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	return f
}

// authorize sends the authorization request and returns the redirect.
func (f *flow) authorize(t *testing.T, s *Server) *url.URL {
	t.Helper()
	resp, err := s.noRedirectClient().Get(s.endpoint("authorize") + "?" + f.params.Encode())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: got status %d, want 303", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: location: %v", err)
	}
	return loc
}

// exchange redeems code with verifier.
func (f *flow) exchange(s *Server, clientID, code, verifier string) (tokenResponse, error) {
	return s.postToken(clientID, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.params.Get("redirect_uri")},
		"code_verifier": {verifier},
	})
}

// idClaims verifies an ID token against the server key and returns its claims.
func idClaims(t *testing.T, s *Server, idToken string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(idToken, claims, func(*jwt.Token) (any, error) { return &s.Key().PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.Issuer()), jwt.WithAudience(PublicClientID))
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	if got := tok.Header["kid"]; got != s.KeyID() {
		t.Errorf("id token kid: got %v, want %q", got, s.KeyID())
	}
	return claims
}

func TestAuthorizationCodeFlow(t *testing.T) {
	s := New(t, Options{Subject: "bob"})
	f := newFlow(PublicClientID, "http://127.0.0.1/callback")
	loc := f.authorize(t, s)
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "http://127.0.0.1/callback" {
		t.Errorf("redirect: got %q, want %q", got, "http://127.0.0.1/callback")
	}
	if got := q.Get("state"); got != f.state {
		t.Errorf("state: got %q, want %q", got, f.state)
	}
	if got := q.Get("iss"); got != s.Issuer() {
		t.Errorf("iss: got %q, want %q", got, s.Issuer())
	}
	tr, err := f.exchange(s, PublicClientID, q.Get("code"), f.verifier)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	claims := idClaims(t, s, tr.IDToken)
	if got := claims["nonce"]; got != f.nonce {
		t.Errorf("nonce: got %v, want %q", got, f.nonce)
	}
	if got := claims["sub"]; got != "bob" {
		t.Errorf("sub: got %v, want %q", got, "bob")
	}
	// An authorization code is single-use.
	_, err = f.exchange(s, PublicClientID, q.Get("code"), f.verifier)
	wantTokenError(t, err, "invalid_grant")
}

func TestPKCE(t *testing.T) {
	s := New(t, Options{})
	t.Run("required for public clients", func(t *testing.T) {
		f := newFlow(PublicClientID, "http://127.0.0.1/callback")
		f.params.Del("code_challenge")
		f.params.Del("code_challenge_method")
		q := f.authorize(t, s).Query()
		if got := q.Get("error"); got != "invalid_request" {
			t.Errorf("error: got %q, want %q", got, "invalid_request")
		}
		if got := q.Get("state"); got != f.state {
			t.Errorf("state: got %q, want %q", got, f.state)
		}
		if q.Get("code") != "" {
			t.Error("got a code without PKCE, want none")
		}
	})
	t.Run("plain refused", func(t *testing.T) {
		f := newFlow(PublicClientID, "http://127.0.0.1/callback")
		f.params.Set("code_challenge", f.verifier)
		f.params.Set("code_challenge_method", "plain")
		if got := f.authorize(t, s).Query().Get("error"); got != "invalid_request" {
			t.Errorf("error: got %q, want %q", got, "invalid_request")
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		f := newFlow(PublicClientID, "http://127.0.0.1/callback")
		code := f.authorize(t, s).Query().Get("code")
		_, err := f.exchange(s, PublicClientID, code, randomHex(32))
		wantTokenError(t, err, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		f := newFlow(PublicClientID, "http://127.0.0.1/callback")
		code := f.authorize(t, s).Query().Get("code")
		_, err := f.exchange(s, PublicClientID, code, "")
		wantTokenError(t, err, "invalid_grant")
	})
}

func TestLoopbackRedirectAnyPort(t *testing.T) {
	s := New(t, Options{})
	tests := []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1:49152/callback", true},
		{"http://localhost:61234/callback", true},
		{"http://127.0.0.1/callback", true},
		{"http://localhost/callback", true},
		{"http://127.0.0.1:49152/other", false},
		{"http://localhost:61234/other", false},
		{"https://localhost:61234/callback", false},
		{"http://evil.example:61234/callback", false},
	}
	for _, tt := range tests {
		t.Run(tt.redirect, func(t *testing.T) {
			f := newFlow(PublicClientID, tt.redirect)
			resp, err := s.noRedirectClient().Get(s.endpoint("authorize") + "?" + f.params.Encode())
			if err != nil {
				t.Fatalf("authorize: %v", err)
			}
			resp.Body.Close()
			if !tt.ok {
				if resp.StatusCode == http.StatusSeeOther {
					t.Fatalf("got redirect to %q, want a refusal without redirect", resp.Header.Get("Location"))
				}
				return
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != tt.redirect {
				t.Fatalf("redirect: got %q, want %q", got, tt.redirect)
			}
			if _, err := f.exchange(s, PublicClientID, loc.Query().Get("code"), f.verifier); err != nil {
				t.Fatalf("code exchange: %v", err)
			}
		})
	}
}

func TestDenyNext(t *testing.T) {
	s := New(t, Options{})
	for _, code := range []string{"", "temporarily_unavailable"} {
		want := code
		if want == "" {
			want = "access_denied"
		}
		s.DenyNext(code)
		f := newFlow(PublicClientID, "http://127.0.0.1:5555/callback")
		q := f.authorize(t, s).Query()
		if got := q.Get("error"); got != want {
			t.Errorf("error: got %q, want %q", got, want)
		}
		if got := q.Get("state"); got != f.state {
			t.Errorf("state: got %q, want %q", got, f.state)
		}
		if got := q.Get("iss"); got != s.Issuer() {
			t.Errorf("iss: got %q, want %q", got, s.Issuer())
		}
		if q.Get("code") != "" {
			t.Error("got a code from a denied authorization")
		}
	}
	// Only the next one.
	if q := newFlow(PublicClientID, "http://127.0.0.1/callback").authorize(t, s).Query(); q.Get("code") == "" {
		t.Errorf("second authorization: got error %q, want a code", q.Get("error"))
	}
}

func TestIssParamOverride(t *testing.T) {
	s := New(t, Options{})
	s.SetIssParam("https://evil.example")
	if got := newFlow(PublicClientID, "http://127.0.0.1/callback").authorize(t, s).Query().Get("iss"); got != "https://evil.example" {
		t.Errorf("iss: got %q, want %q", got, "https://evil.example")
	}
	s.SetIssParam("")
	if q := newFlow(PublicClientID, "http://127.0.0.1/callback").authorize(t, s).Query(); q.Has("iss") {
		t.Errorf("iss: got %q, want none", q.Get("iss"))
	}
	s.ResetIssParam()
	if got := newFlow(PublicClientID, "http://127.0.0.1/callback").authorize(t, s).Query().Get("iss"); got != s.Issuer() {
		t.Errorf("iss: got %q, want %q", got, s.Issuer())
	}
}

func TestNonceOverride(t *testing.T) {
	s := New(t, Options{})
	tests := []struct {
		name     string
		set      func()
		override bool
		want     any
	}{
		{"wrong", func() { s.SetNonceOverride("not-the-nonce") }, true, "not-the-nonce"},
		{"missing", func() { s.SetNonceOverride("") }, true, nil},
		{"reset", s.ResetNonce, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.set()
			f := newFlow(PublicClientID, "http://127.0.0.1/callback")
			tr, err := f.exchange(s, PublicClientID, f.authorize(t, s).Query().Get("code"), f.verifier)
			if err != nil {
				t.Fatalf("code exchange: %v", err)
			}
			want := tt.want
			if !tt.override {
				want = f.nonce
			}
			if got := idClaims(t, s, tr.IDToken)["nonce"]; got != want {
				t.Errorf("nonce: got %v, want %v", got, want)
			}
		})
	}
}
