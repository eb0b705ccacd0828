package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// testKeys are an issuer's signing keys, one of each supported type.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

var (
	testKeysOnce sync.Once
	testKeysVal  testKeys
)

// signingKeys returns keys generated once per test binary (RSA generation
// is slow under -race).
func signingKeys(t testing.TB) testKeys {
	t.Helper()
	testKeysOnce.Do(func() {
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		_, d, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		testKeysVal = testKeys{rsa: r, ec: e, ed: d}
	})
	return testKeysVal
}

// jwksJSON is the JWK Set of k, key ids "rsa1", "ec1" and "ed1".
func (k testKeys) jwksJSON(t testing.TB) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	ecb, err := k.ec.PublicKey.Bytes()
	if err != nil {
		t.Fatalf("ec public key: %v", err)
	}
	doc := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(ecb[1:33]), "y": b64(ecb[33:])},
		{"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64(k.ed.Public().(ed25519.PublicKey))},
		{"kty": "oct", "kid": "hmac", "k": b64([]byte("not-a-public-key"))},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sign signs claims with the key of kid using alg.
func (k testKeys) sign(t testing.TB, alg, kid string, claims jwt.MapClaims) string {
	t.Helper()
	var key any
	switch kid {
	case "rsa1":
		key = k.rsa
	case "ec1":
		key = k.ec
	case "ed1":
		key = k.ed
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

// jwksServer serves k's JWKS at /jwks.
func jwksServer(t *testing.T, k testKeys) *httptest.Server {
	t.Helper()
	body := k.jwksJSON(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSignInVerifyIDToken(t *testing.T) {
	k := signingKeys(t)
	srv := jwksServer(t, k)
	now := time.Now()
	r, err := signInRequest{
		ClientID: "ncagent",
		Issuer:   srv.URL,
		Metadata: broker.Metadata{Issuer: srv.URL, JWKSURI: srv.URL + "/jwks"},
		HTTP:     testHTTPClient(t),
		Now:      func() time.Time { return now },
		Progress: func(ipc.LoginEvent) {},
	}.withDefaults(DefaultSignInTimeout)
	if err != nil {
		t.Fatal(err)
	}
	const nonce = "the-nonce-of-this-sign-in"
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": srv.URL, "aud": "ncagent", "sub": "u-123", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"nonce": nonce, "preferred_username": "bob", "name": "Bob Builder",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		s, err := tok.SignedString([]byte("shared-secret-guess"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name    string
		token   string
		nonce   string
		wantErr error // nil: success
	}{
		{"RS256", k.sign(t, "RS256", "rsa1", claims(nil)), nonce, nil},
		{"PS256", k.sign(t, "PS256", "rsa1", claims(nil)), nonce, ErrIDToken}, // the JWK says alg RS256
		{"ES256", k.sign(t, "ES256", "ec1", claims(nil)), nonce, nil},
		{"EdDSA", k.sign(t, "EdDSA", "ed1", claims(nil)), nonce, nil},
		{"no nonce check (device flow)", k.sign(t, "ES256", "ec1", claims(func(c jwt.MapClaims) { delete(c, "nonce") })), "", nil},
		{"azp equal to client", k.sign(t, "ES256", "ec1", claims(func(c jwt.MapClaims) { c["azp"] = "ncagent"; c["aud"] = []string{"ncagent", "other"} })), nonce, nil},
		{"HS256 refused", hs256(), nonce, ErrIDToken},
		{"alg none refused", none(), nonce, ErrIDToken},
		{"unknown kid", signWithKid(t, k, "nope"), nonce, ErrIDToken},
		{"wrong issuer", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), nonce, ErrIDToken},
		{"wrong audience", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), nonce, ErrIDToken},
		{"azp of another client", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { c["azp"] = "someone-else" })), nonce, ErrIDToken},
		{"expired", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), nonce, ErrIDToken},
		{"no exp", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { delete(c, "exp") })), nonce, ErrIDToken},
		{"no sub", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { delete(c, "sub") })), nonce, ErrIDToken},
		{"nonce missing", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { delete(c, "nonce") })), nonce, ErrSignInState},
		{"nonce mismatch", k.sign(t, "RS256", "rsa1", claims(func(c jwt.MapClaims) { c["nonce"] = "another-nonce" })), nonce, ErrSignInState},
		{"tampered payload", tamper(k.sign(t, "RS256", "rsa1", claims(nil))), nonce, ErrIDToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := verifyIDToken(context.Background(), r, tt.token, tt.nonce)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("verifyIDToken: got %q, want success", err)
				}
				if c.Subject != "u-123" || c.PreferredUsername != "bob" || c.Name != "Bob Builder" {
					t.Errorf("claims: got %+v, want sub u-123, bob, Bob Builder", c)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("verifyIDToken: got %v, want an error wrapping %q", err, tt.wantErr)
			}
		})
	}
}

// signWithKid signs a valid-looking token with an RSA key but names kid.
func signWithKid(t *testing.T, k testKeys, kid string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "x"})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k.rsa)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamper changes the payload of a JWT, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), `"bob"`, `"eve"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}
