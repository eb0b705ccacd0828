package broker

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/internal/idptest"
)

// TestBrokerProvider: the Provider the Broker hands the sign-in is built
// from the Broker's cached discovery and shares its JWKS cache with the
// JWT subject-token checks of the chain, so a sign-in costs no second
// discovery or key fetch; the account's Endpoints overrides win.
func TestBrokerProvider(t *testing.T) {
	s := idptest.New(t, idptest.Options{Key: sharedKey()})
	b := New(Options{Store: newMemStore()})
	acct := clientAccount(s, idptest.PublicClientID)
	idToken := s.MintJWT(t, jwt.MapClaims{"iss": s.Issuer(), "aud": idptest.PublicClientID, "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})

	for i := range 2 {
		p, err := b.Provider(t.Context(), acct)
		if err != nil {
			t.Fatalf("Provider %d: %v", i, err)
		}
		if got := p.Metadata().TokenEndpoint; got != s.URL+"/token" {
			t.Errorf("token endpoint: got %q, want the discovered %q", got, s.URL+"/token")
		}
		if _, err := p.VerifyIDToken(t.Context(), idToken, ""); err != nil {
			t.Fatalf("VerifyIDToken %d: %v", i, err)
		}
	}
	if err := b.verifySubject(t.Context(), acct, s.MintJWT(t, jwt.MapClaims{"iss": s.Issuer(), "aud": "mcp-server", "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})); err != nil {
		t.Fatalf("verifySubject: %v", err)
	}
	if got := s.DiscoveryFetches(); got != 1 {
		t.Errorf("discovery fetches: got %d, want 1 (cached by the Broker)", got)
	}
	if got := s.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetches: got %d, want 1 (one cache for sign-in and chain)", got)
	}

	over := acct
	over.Endpoints.Userinfo = "https://elsewhere.example/userinfo"
	p, err := b.Provider(t.Context(), over)
	if err != nil {
		t.Fatalf("Provider with override: %v", err)
	}
	if got := p.Metadata().UserinfoEndpoint; got != over.Endpoints.Userinfo {
		t.Errorf("userinfo endpoint: got %q, want the override %q", got, over.Endpoints.Userinfo)
	}
}
