package broker

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"hash"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/internal/testutil"
)

// unsignedToken builds a compact JWS from a header and claims with the
// given raw signature segment, without any key.
func unsignedToken(t testing.TB, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c) + "." + sig
}

// subjectFixture is an IdP with an RSA, an EC and an Ed25519 key.
type subjectFixture struct {
	clock *testutil.Clock
	srv   *jwksServer
	rsa   jwtTestKey
	ec    jwtTestKey
	ed    jwtTestKey
}

func newSubjectFixture(t testing.TB) *subjectFixture {
	f := &subjectFixture{
		clock: newJWTClock(),
		rsa:   rsaTestKey("rsa-1", jwtRSAKeyA()),
		ec:    jwtTestKey{kid: "ec-1", method: jwt.SigningMethodES256, priv: newECKey(t, elliptic.P256())},
		ed:    jwtTestKey{kid: "ed-1", method: jwt.SigningMethodEdDSA, priv: newEdKey(t)},
	}
	f.srv = newJWKSServer(t, f.rsa, f.ec, f.ed)
	return f
}

func (f *subjectFixture) cache() *jwksCache {
	return newJWKSCache(f.srv.Client(), f.srv.URL, f.clock.Now, 0)
}

func TestVerifySubject(t *testing.T) {
	f := newSubjectFixture(t)
	now := f.clock.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(now)
		if edit != nil {
			edit(c)
		}
		return c
	}
	forger := rsaTestKey("rsa-1", jwtRSAKeyB()) // another key claiming the same kid
	unpublished := rsaTestKey("rsa-2", jwtRSAKeyC())
	ps256 := f.rsa
	ps256.method = jwt.SigningMethodPS256
	rs384 := f.rsa
	rs384.method = jwt.SigningMethodRS384
	es256NoKid := f.ec
	es256NoKid.kid = ""

	// Key confusion (RFC 8725 §2.1): HS256 keyed with the RSA public key
	// as it is published, both as PEM and as the raw modulus.
	pubDER, err := x509.MarshalPKIXPublicKey(jwtRSAKeyA().Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hmacToken := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
		tok.Header["kid"] = "rsa-1"
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := f.rsa.sign(t, claims(nil), false)
	validParts := strings.Split(valid, ".")

	withAlgs := func(algs ...string) subjectPolicy { p := testPolicy; p.Algs = algs; return p }

	tests := []struct {
		name    string
		token   string
		policy  *subjectPolicy // default testPolicy
		wantSub string         // when accepted
		wantErr string         // substring of the rejection; "" means accepted
		noFetch bool           // refused before any key lookup
	}{
		{name: "RS256 valid", token: valid, wantSub: "alice"},
		{name: "ES256 valid", token: f.ec.sign(t, claims(nil), false), wantSub: "alice"},
		{name: "EdDSA valid", token: f.ed.sign(t, claims(nil), false), wantSub: "alice"},
		{name: "PS256 valid with an RSA key", token: ps256.sign(t, claims(nil), false), wantSub: "alice"},
		{name: "no kid tries each compatible key", token: f.ec.sign(t, claims(nil), true), wantSub: "alice"},
		{name: "no kid RSA", token: f.rsa.sign(t, claims(nil), true), wantSub: "alice"},
		{name: "aud array with one accepted value", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", "ncagent-client"} }), false), wantSub: "alice"},
		{name: "expired within leeway", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }), false), wantSub: "alice"},
		{name: "nbf and iat absent", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "nbf"); delete(c, "iat") }), false), wantSub: "alice"},
		{name: "unknown claims ignored", token: es256NoKid.sign(t, claims(func(c jwt.MapClaims) { c["extra"] = map[string]any{"x": 1} }), false), wantSub: "alice"},

		{name: "forged with another key under the same kid", token: forger.sign(t, claims(nil), false), wantErr: "signature invalid"},
		{name: "forged without kid", token: forger.sign(t, claims(nil), true), wantErr: "signature invalid"},
		{name: "payload swapped after signing", token: validParts[0] + "." + b64([]byte(`{"iss":"`+testIssuer+`","sub":"mallory","aud":"mcp-server","exp":`+strconv.FormatInt(now.Add(time.Hour).Unix(), 10)+`}`)) + "." + validParts[2], wantErr: "signature invalid"},
		{name: "signature stripped", token: validParts[0] + "." + validParts[1] + ".", wantErr: "signature invalid"},
		{name: "expired", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), false), wantErr: "expired"},
		{name: "missing exp", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "exp") }), false), wantErr: "exp claim missing"},
		{name: "wrong iss", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["iss"] = testIssuer + "/" }), false), wantErr: "iss does not match"},
		{name: "missing iss", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "iss") }), false), wantErr: "iss claim missing"},
		{name: "wrong aud", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = "nextcloud" }), false), wantErr: "aud names no accepted audience"},
		{name: "aud array without accepted value", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }), false), wantErr: "aud names no accepted audience"},
		{name: "missing aud", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "aud") }), false), wantErr: "aud claim missing"},
		{name: "nbf in the future", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), false), wantErr: "nbf"},
		{name: "iat in the future", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }), false), wantErr: "iat"},
		{name: "missing sub", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { delete(c, "sub") }), false), wantErr: "sub claim missing"},
		{name: "several failures named", token: f.rsa.sign(t, claims(func(c jwt.MapClaims) { c["iss"] = "x"; c["aud"] = "y" }), false), wantErr: "iss does not match the configured issuer, aud names no accepted audience"},

		{name: "alg none unsigned", token: unsignedToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, claims(nil), ""), wantErr: "algorithm none not allowed", noFetch: true},
		{name: "alg none even if listed", token: unsignedToken(t, map[string]any{"alg": "none"}, claims(nil), ""), policy: new(withAlgs("none", "RS256")), wantErr: "algorithm none not allowed", noFetch: true},
		{name: "HS256 keyed with RSA public key PEM", token: hmacToken(pubPEM), wantErr: "algorithm HS256 not allowed", noFetch: true},
		{name: "HS256 keyed with RSA public key DER", token: hmacToken(pubDER), wantErr: "algorithm HS256 not allowed", noFetch: true},
		{name: "HS256 keyed with RSA modulus", token: hmacToken(jwtRSAKeyA().N.Bytes()), wantErr: "algorithm HS256 not allowed", noFetch: true},
		{name: "HS256 refused even if listed", token: hmacToken(pubPEM), policy: new(withAlgs("HS256", "RS256")), wantErr: "algorithm HS256 not allowed", noFetch: true},
		{name: "alg outside the allow-list", token: rs384.sign(t, claims(nil), false), policy: new(withAlgs("RS256", "ES256")), wantErr: "algorithm RS384 not allowed", noFetch: true},
		{name: "EdDSA outside the allow-list", token: f.ed.sign(t, claims(nil), false), policy: new(withAlgs("RS256")), wantErr: "algorithm EdDSA not allowed", noFetch: true},
		{name: "unknown alg", token: unsignedToken(t, map[string]any{"alg": "XX999"}, claims(nil), "c2ln"), wantErr: "alg header missing or unknown", noFetch: true},
		{name: "missing alg", token: unsignedToken(t, map[string]any{"typ": "JWT"}, claims(nil), "c2ln"), wantErr: "alg header missing or unknown", noFetch: true},
		{name: "ES256 with the kid of the RSA key", token: func() string { k := f.ec; k.kid = "rsa-1"; return k.sign(t, claims(nil), false) }(), wantErr: "does not fit alg ES256"},
		{name: "key's own alg differs from token's", token: func() string {
			k := f.rsa
			k.kid = "rsa-own-alg"
			k.method = jwt.SigningMethodPS256
			return k.sign(t, claims(nil), false)
		}(), wantErr: "does not fit alg PS256"},
		{name: "unknown kid after refetch", token: unpublished.sign(t, claims(nil), false), wantErr: "no key with the token's kid"},
		{name: "no kid and no key verifies", token: unpublished.sign(t, claims(nil), true), wantErr: "signature invalid"},
		{name: "kid not a string", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["kid"] = 7
			s, _ := tok.SignedString(jwtRSAKeyA())
			return s
		}(), wantErr: "kid header is not a string", noFetch: true},
		{name: "crit header", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["kid"] = "rsa-1"
			tok.Header["crit"] = []string{"exp"}
			s, _ := tok.SignedString(jwtRSAKeyA())
			return s
		}(), wantErr: "crit header not supported", noFetch: true},

		{name: "malformed: empty", token: "", wantErr: "malformed", noFetch: true},
		{name: "malformed: one segment", token: "abc", wantErr: "malformed", noFetch: true},
		{name: "malformed: two segments", token: validParts[0] + "." + validParts[1], wantErr: "malformed", noFetch: true},
		{name: "malformed: four segments", token: valid + ".x", wantErr: "malformed", noFetch: true},
		{name: "malformed: header not base64url", token: "!!." + validParts[1] + "." + validParts[2], wantErr: "malformed", noFetch: true},
		{name: "malformed: padded header", token: validParts[0] + "=." + validParts[1] + "." + validParts[2], wantErr: "malformed", noFetch: true},
		{name: "malformed: header not json", token: b64([]byte("alg")) + "." + validParts[1] + "." + validParts[2], wantErr: "malformed", noFetch: true},
		{name: "malformed: exp not a number", token: unsignedToken(t, map[string]any{"alg": "RS256"}, jwt.MapClaims{"exp": "tomorrow"}, "c2ln"), wantErr: "malformed", noFetch: true},
		{name: "malformed: aud not strings", token: unsignedToken(t, map[string]any{"alg": "RS256"}, jwt.MapClaims{"aud": []int{1}}, "c2ln"), wantErr: "malformed", noFetch: true},
		{name: "too large", token: strings.Repeat("a", maxSubjectToken+1), wantErr: "larger than", noFetch: true},

		{name: "policy without issuer", token: valid, policy: &subjectPolicy{Audiences: []string{testAudience}}, wantErr: "no issuer configured", noFetch: true},
		{name: "policy without audience", token: valid, policy: &subjectPolicy{Issuer: testIssuer, Audiences: []string{""}}, wantErr: "no accepted audience configured", noFetch: true},
		{name: "policy with only unsupported algs", token: valid, policy: new(withAlgs("HS256", "none")), wantErr: "no supported algorithm", noFetch: true},
	}
	// A key whose JWK pins alg RS256, for the key's-own-alg case.
	pinned := f.rsa
	pinned.kid, pinned.alg = "rsa-own-alg", "RS256"
	f.srv.publish(f.rsa, f.ec, f.ed, pinned)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy
			if tt.policy != nil {
				p = *tt.policy
			}
			before := f.srv.count()
			cache := f.cache()
			sub, err := cache.verify(t.Context(), tt.token, p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if sub != tt.wantSub {
					t.Errorf("subject = %q, want %q", sub, tt.wantSub)
				}
				return
			}
			if err == nil {
				t.Fatalf("verify accepted the token (subject %q), want rejection %q", sub, tt.wantErr)
			}
			if sub != "" {
				t.Errorf("subject = %q on rejection, want empty", sub)
			}
			if !errors.Is(err, ErrSubjectToken) {
				t.Errorf("error %q does not wrap ErrSubjectToken", err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("error %q wraps ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			assertNoTokenInError(t, err, tt.token)
			if fetches := f.srv.count() - before; tt.noFetch && fetches != 0 {
				t.Errorf("fetches = %d, want 0: the token must be refused before any key lookup", fetches)
			}
		})
	}
}

func TestVerifySubjectNoKidTriesEachKey(t *testing.T) {
	// Without a kid, every compatible key is tried: here the signing key is
	// published after another RSA key and an EC key.
	clock := newJWTClock()
	other := rsaTestKey("other", jwtRSAKeyB())
	signer := rsaTestKey("signer", jwtRSAKeyA())
	ec := jwtTestKey{kid: "ec", method: jwt.SigningMethodES256, priv: newECKey(t, elliptic.P256())}
	srv := newJWKSServer(t, other, ec, signer)
	cache := newJWKSCache(srv.Client(), srv.URL, clock.Now, 0)
	sub, err := cache.verify(t.Context(), signer.sign(t, validClaims(clock.Now()), true), testPolicy)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if sub != "alice" {
		t.Errorf("subject = %q, want %q", sub, "alice")
	}
	if got := srv.count(); got != 1 {
		t.Errorf("fetches = %d, want 1", got)
	}
}

func TestVerifySubjectLeeway(t *testing.T) {
	f := newSubjectFixture(t)
	now := f.clock.Now()
	tok := f.rsa.sign(t, jwt.MapClaims{"iss": testIssuer, "sub": "alice", "aud": testAudience, "exp": now.Unix()}, false)
	tests := []struct {
		leeway  time.Duration
		advance time.Duration
		ok      bool
	}{
		{leeway: 0, advance: -time.Second, ok: true},
		{leeway: 0, advance: 0, ok: false}, // RFC 7519 §4.1.4: now MUST be before exp
		{leeway: time.Minute, advance: 59 * time.Second, ok: true},
		{leeway: time.Minute, advance: time.Minute, ok: false},
		{leeway: -time.Minute, advance: -time.Second, ok: true}, // negative leeway is treated as zero
	}
	for _, tt := range tests {
		clock := testutil.NewClock(now.Add(tt.advance))
		cache := newJWKSCache(f.srv.Client(), f.srv.URL, clock.Now, 0)
		p := testPolicy
		p.Leeway = tt.leeway
		_, err := cache.verify(t.Context(), tok, p)
		if got := err == nil; got != tt.ok {
			t.Errorf("leeway %v at exp%+v: accepted = %v, want %v (err %v)", tt.leeway, tt.advance, got, tt.ok, err)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	f := newSubjectFixture(t)
	valid := f.ed.sign(t, validClaims(f.clock.Now()), false)
	parts := strings.Split(valid, ".")
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"signed jwt", valid, true},
		{"unsigned jwt (alg none, empty signature)", unsignedToken(t, map[string]any{"alg": "none"}, jwt.MapClaims{"sub": "x"}, ""), true},
		{"alg with odd value still a jws shape", unsignedToken(t, map[string]any{"alg": ""}, nil, "c2ln"), true},
		{"padded header", parts[0] + "==." + parts[1] + "." + parts[2], true},
		{"opaque token", "ya29.a0AfH6SMBx-opaque_token", false},
		{"random string", "not a token", false},
		{"empty", "", false},
		{"dots only", "..", false},
		{"two segments", parts[0] + "." + parts[1], false},
		{"jwe five segments", parts[0] + ".a.b.c.d", false},
		{"header not base64url", "%%%." + parts[1] + "." + parts[2], false},
		{"header not json", b64([]byte("hello")) + "." + parts[1] + "." + parts[2], false},
		{"header json array", b64([]byte(`["alg"]`)) + "." + parts[1] + "." + parts[2], false},
		{"header without alg", b64([]byte(`{"typ":"JWT"}`)) + "." + parts[1] + "." + parts[2], false},
		{"alg not a string", b64([]byte(`{"alg":1}`)) + "." + parts[1] + "." + parts[2], false},
		{"payload with bad characters", parts[0] + ".a+b/c." + parts[2], false},
		{"signature with space", parts[0] + "." + parts[1] + ".a b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := looksLikeJWT(tt.token); got != tt.want {
				t.Errorf("looksLikeJWT = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultAlgs(t *testing.T) {
	want := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	if !slices.Equal(defaultAlgs, want) {
		t.Errorf("defaultAlgs = %q, want %q", defaultAlgs, want)
	}
	for _, a := range defaultAlgs {
		if a == "none" || strings.HasPrefix(a, "HS") {
			t.Errorf("defaultAlgs contains %q", a)
		}
	}
}

// signedBy reports whether token carries a valid signature by one of pubs,
// checked with the standard library alone, independently of the jwt
// package: the fuzz oracle.
func signedBy(token string, pubs []crypto.PublicKey) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	input := []byte(parts[0] + "." + parts[1])
	digest := func(newHash func() hash.Hash) []byte { d := newHash(); d.Write(input); return d.Sum(nil) }
	for _, pub := range pubs {
		switch pub := pub.(type) {
		case *rsa.PublicKey:
			if len(h.Alg) != 5 {
				continue
			}
			var ch crypto.Hash
			var d []byte
			switch h.Alg[2:] {
			case "256":
				ch, d = crypto.SHA256, digest(sha256.New)
			case "384":
				ch, d = crypto.SHA384, digest(sha512.New384)
			case "512":
				ch, d = crypto.SHA512, digest(sha512.New)
			default:
				continue
			}
			switch h.Alg[:2] {
			case "RS":
				if rsa.VerifyPKCS1v15(pub, ch, d, sig) == nil {
					return true
				}
			case "PS":
				if rsa.VerifyPSS(pub, ch, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
					return true
				}
			}
		case *ecdsa.PublicKey:
			if h.Alg == "ES256" && pub.Curve == elliptic.P256() && len(sig) == 64 {
				r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
				if ecdsa.Verify(pub, digest(sha256.New), r, s) {
					return true
				}
			}
		case ed25519.PublicKey:
			if h.Alg == "EdDSA" && ed25519.Verify(pub, input, sig) {
				return true
			}
		}
	}
	return false
}

// FuzzVerifySubject feeds arbitrary strings to verify with a fixed JWKS. It
// must never panic, never accept a token that the published keys did not
// sign (checked independently with the standard library), never accept
// what looksLikeJWT calls not a JWT, and never echo the token in an error.
// Seeds: testdata/fuzz/FuzzVerifySubject (invalid shapes) plus valid tokens
// minted here with throwaway keys.
func FuzzVerifySubject(f *testing.F) {
	fx := newSubjectFixture(f)
	now := fx.clock.Now()
	cache := fx.cache()
	pubs := []crypto.PublicKey{fx.rsa.priv.Public(), fx.ec.priv.Public(), fx.ed.priv.Public()}
	// Signature checks must be confined to the published keys: the seeds
	// below must pass the oracle, or the oracle is wrong.
	for _, tok := range []string{
		fx.rsa.sign(f, validClaims(now), false),
		fx.ec.sign(f, validClaims(now), false),
		fx.ed.sign(f, validClaims(now), true),
	} {
		if !signedBy(tok, pubs) {
			f.Fatal("oracle rejects a valid seed token")
		}
		f.Add(tok)
	}
	expired := validClaims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	f.Add(fx.rsa.sign(f, expired, false))
	f.Add(rsaTestKey("rsa-1", jwtRSAKeyB()).sign(f, validClaims(now), false))
	f.Add(unsignedToken(f, map[string]any{"alg": "none"}, validClaims(now), ""))

	f.Fuzz(func(t *testing.T, token string) {
		sub, err := cache.verify(t.Context(), token, testPolicy)
		if err != nil {
			if !errors.Is(err, ErrSubjectToken) {
				t.Fatalf("verify error %q does not wrap ErrSubjectToken (the JWKS server is up)", err)
			}
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q contains the token", err)
			}
			return
		}
		if !signedBy(token, pubs) {
			t.Fatalf("verify accepted a token not signed by the published keys (subject %q)", sub)
		}
		if !looksLikeJWT(token) {
			t.Fatal("verify accepted a token looksLikeJWT rejects")
		}
		if sub == "" {
			t.Fatal("verify accepted a token with an empty subject")
		}
	})
}

// FuzzLooksLikeJWT checks that looksLikeJWT never panics and that whatever
// it accepts has three segments and a JSON object header with "alg".
func FuzzLooksLikeJWT(f *testing.F) {
	for _, s := range []string{
		"", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
		"eyJhbGciOiJSUzI1NiJ9==.e30.c2ln", "eyJ0eXAiOiJKV1QifQ.e30.c2ln", "a.b.c.d.e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if !looksLikeJWT(token) {
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d segments", len(parts))
		}
		hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
		if err != nil {
			t.Fatalf("accepted an undecodable header: %v", err)
		}
		var h map[string]any
		if err := json.Unmarshal(hb, &h); err != nil {
			t.Fatalf("accepted a header that is not a JSON object: %v", err)
		}
		if _, ok := h["alg"]; !ok {
			t.Fatal("accepted a header without alg")
		}
	})
}
