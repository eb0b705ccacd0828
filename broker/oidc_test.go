package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ncagent/ncagent/internal/idptest"
)

// randomText returns n random bytes, base64url-encoded.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// clientAccount is an account for one of idptest's registered clients,
// authenticating as that client is registered to.
func clientAccount(s *idptest.Server, clientID string) Account {
	a := Account{Name: "work", Kind: KindOIDC, Issuer: s.Issuer(), ClientID: clientID, CAPEM: s.CAPEM()}
	switch clientID {
	case idptest.ConfidentialClientID:
		a.ClientAuth, a.ClientSecret = ClientAuthBasic, Secret(s.ConfidentialSecret)
	case idptest.PostClientID:
		a.ClientAuth, a.ClientSecret = ClientAuthPost, Secret(s.PostSecret)
	}
	return a
}

// discovered is acct's Provider, from a fresh discovery.
func discovered(t *testing.T, acct Account) *Provider {
	t.Helper()
	p, err := DiscoverProvider(t.Context(), acct, ProviderOptions{})
	if err != nil {
		t.Fatalf("DiscoverProvider: %v", err)
	}
	return p
}

// known is acct's Provider with no discovery: its Endpoints overrides are
// all it knows.
func known(t *testing.T, acct Account) *Provider {
	t.Helper()
	p, err := NewProvider(acct, Metadata{Issuer: acct.Issuer}, ProviderOptions{})
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// exchange redeems the code of an authorize form with ExchangeCode.
func exchange(ctx context.Context, p *Provider, form url.Values) (TokenResponse, error) {
	return p.ExchangeCode(ctx, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
}

// authorize plays the user's browser for an authorization request of
// clientID with PKCE (S256) and nonce, approved by the server, and returns
// the token request form that redeems the code.
func authorize(t *testing.T, s *idptest.Server, clientID, nonce string, scopes ...string) url.Values {
	t.Helper()
	verifier := randomText(32)
	sum := sha256.Sum256([]byte(verifier))
	state := randomText(16)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {idptest.LoginRedirectURI},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	c := *s.Client()
	c.Timeout = 10 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(s.URL + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorization response: got HTTP %d (location error %v), want 303", resp.StatusCode, err)
	}
	back := loc.Query()
	if back.Get("state") != state || back.Get("code") == "" {
		t.Fatalf("authorization response: got error %q, want a code for this state", back.Get("error"))
	}
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {back.Get("code")},
		"redirect_uri":  {idptest.LoginRedirectURI},
		"code_verifier": {verifier},
	}
}

// assertNoSecret fails when text contains any of secrets (of 8 bytes or
// more), naming the secret's place, never its value.
func assertNoSecret(t *testing.T, what, text string, secrets map[string]string) {
	t.Helper()
	for name, v := range secrets {
		if len(v) >= 8 && strings.Contains(text, v) {
			t.Errorf("%s contains the %s", what, name)
		}
	}
}

// TestExchangeCodeFlow runs real code flows against idptest: ExchangeCode
// (x/oauth2) redeems the code with each client authentication, VerifyIDToken accepts the ID
// token the server issued for this nonce and no other, and Userinfo names
// the user.
func TestExchangeCodeFlow(t *testing.T) {
	for _, tc := range []struct {
		client string
		tls    bool
	}{
		{idptest.PublicClientID, false},
		{idptest.ConfidentialClientID, true},
		{idptest.PostClientID, false},
	} {
		t.Run(fmt.Sprintf("%s tls=%v", tc.client, tc.tls), func(t *testing.T) {
			s := idptest.New(t, idptest.Options{TLS: tc.tls, Key: sharedKey(), SendRefreshExpiresIn: true})
			acct := clientAccount(s, tc.client)
			nonce := randomText(24)
			form := authorize(t, s, tc.client, nonce, "openid", "offline_access", "profile", "files")
			p := discovered(t, acct)

			tr, err := exchange(t.Context(), p, form)
			if err != nil {
				t.Fatalf("ExchangeCode: %v", err)
			}
			if got := s.Calls("authorization_code"); got != 1 {
				t.Errorf("code exchanges: got %d, want 1", got)
			}
			if active, _, _ := s.Introspect(tr.AccessToken.Reveal()); !active {
				t.Error("access token: got inactive at the server, want active")
			}
			if !s.RefreshTokenActive(tr.RefreshToken.Reveal()) {
				t.Error("refresh token: got inactive at the server, want active")
			}
			if tr.IDToken == "" {
				t.Fatal("IDToken: got none, want the server's ID token")
			}
			if tr.ExpiresIn <= 0 || tr.ExpiresIn > 5*time.Minute {
				t.Errorf("ExpiresIn: got %s, want at most the server's 5m", tr.ExpiresIn)
			}
			if tr.RefreshExpiresIn <= 0 || tr.RefreshExpiresIn > time.Hour {
				t.Errorf("RefreshExpiresIn: got %s, want at most the server's 1h", tr.RefreshExpiresIn)
			}
			if !slices.Contains(tr.Scopes, "files") || !slices.Contains(tr.Scopes, "openid") {
				t.Errorf("Scopes: got %q, want openid and files among them", tr.Scopes)
			}
			secrets := map[string]string{
				"access token": tr.AccessToken.Reveal(), "refresh token": tr.RefreshToken.Reveal(),
				"id token": tr.IDToken.Reveal(), "code": form.Get("code"), "code verifier": form.Get("code_verifier"),
				"client secret": acct.ClientSecret.Reveal(), "nonce": nonce,
			}
			assertNoSecret(t, "printed token response", fmt.Sprintf("%v %+v %#v", tr, tr, tr), secrets)

			claims, err := p.VerifyIDToken(t.Context(), tr.IDToken.Reveal(), nonce)
			if err != nil {
				t.Fatalf("VerifyIDToken: %v", err)
			}
			if claims.Subject != idptest.DefaultSubject {
				t.Errorf("Subject: got %q, want %q", claims.Subject, idptest.DefaultSubject)
			}
			_, err = p.VerifyIDToken(t.Context(), tr.IDToken.Reveal(), randomText(24))
			if !errors.Is(err, ErrNonce) || !errors.Is(err, ErrIDToken) {
				t.Errorf("another sign-in's nonce: got %v, want an error wrapping ErrNonce and ErrIDToken", err)
			}
			other := acct
			other.ClientID = "someone-else"
			if _, err := discovered(t, other).VerifyIDToken(t.Context(), tr.IDToken.Reveal(), nonce); !errors.Is(err, ErrIDToken) || errors.Is(err, ErrNonce) {
				t.Errorf("another client: got %v, want an error wrapping ErrIDToken only", err)
			}

			info, err := p.Userinfo(t.Context(), tr.AccessToken)
			if err != nil {
				t.Fatalf("Userinfo: %v", err)
			}
			if info.Subject != idptest.DefaultSubject || info.PreferredUsername != idptest.DefaultSubject {
				t.Errorf("Userinfo: got sub %q preferred_username %q, want %q for both", info.Subject, info.PreferredUsername, idptest.DefaultSubject)
			}

			// A code is single-use: the replay is the IdP's invalid_grant,
			// not a transport fault, and quotes none of the secrets.
			_, err = exchange(t.Context(), p, form)
			var ie *IdPError
			if !errors.As(err, &ie) || ie.Code != "invalid_grant" || errors.Is(err, ErrUnavailable) {
				t.Fatalf("replayed code: got %v, want an invalid_grant IdPError", err)
			}
			assertNoSecret(t, "replayed code error", err.Error(), secrets)
		})
	}
}

// TestVerifyIDToken checks each rule of OpenID Connect Core 1.0 §3.1.3.7
// that VerifyIDToken applies, with tokens signed by idptest's key (and by
// others).
func TestVerifyIDToken(t *testing.T) {
	s := idptest.New(t, idptest.Options{Key: sharedKey()})
	p := discovered(t, clientAccount(s, idptest.PublicClientID))
	now := time.Now()
	nonce := randomText(24)
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": s.Issuer(), "aud": idptest.PublicClientID, "sub": "u-1", "exp": now.Add(2 * time.Hour).Unix(), "iat": now.Unix(),
			"nonce": nonce, "preferred_username": "bob", "name": "Bob Builder",
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	mint := func(edit func(jwt.MapClaims)) string { return s.MintJWT(t, claims(edit)) }
	signWith := func(key any, method jwt.SigningMethod, kid string) string {
		tok := jwt.NewWithClaims(method, claims(nil))
		if kid != "" {
			tok.Header["kid"] = kid
		}
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}

	tests := []struct {
		name      string
		token     string
		nonce     string // default the nonce of the claims
		noNonce   bool   // verify without a nonce
		wantErr   string // "" means accepted
		wantNonce bool   // the rejection wraps ErrNonce
	}{
		{name: "valid", token: mint(nil)},
		{name: "aud array with the client", token: mint(func(c jwt.MapClaims) { c["aud"] = []string{idptest.PublicClientID} })},
		{name: "several audiences with azp", token: mint(func(c jwt.MapClaims) {
			c["aud"] = []string{idptest.PublicClientID, "files-api"}
			c["azp"] = idptest.PublicClientID
		})},
		{name: "no nonce asked, none sent", token: mint(func(c jwt.MapClaims) { delete(c, "nonce") }), noNonce: true},

		{name: "nonce of another sign-in", token: mint(func(c jwt.MapClaims) { c["nonce"] = randomText(24) }), wantErr: "nonce", wantNonce: true},
		{name: "nonce missing", token: mint(func(c jwt.MapClaims) { delete(c, "nonce") }), wantErr: "no nonce claim", wantNonce: true},
		{name: "nonce not a string", token: mint(func(c jwt.MapClaims) { c["nonce"] = 42 }), wantErr: "malformed"},
		{name: "audience of another client", token: mint(func(c jwt.MapClaims) { c["aud"] = "someone-else" }), wantErr: "aud names no accepted audience"},
		{name: "no audience", token: mint(func(c jwt.MapClaims) { delete(c, "aud") }), wantErr: "aud claim missing"},
		{name: "several audiences without azp", token: mint(func(c jwt.MapClaims) { c["aud"] = []string{idptest.PublicClientID, "files-api"} }), wantErr: "no authorized party"},
		{name: "azp of another client", token: mint(func(c jwt.MapClaims) { c["azp"] = "someone-else" }), wantErr: "authorized party (azp) is not client"},
		{name: "expired", token: mint(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() }), wantErr: "expired"},
		{name: "no exp", token: mint(func(c jwt.MapClaims) { delete(c, "exp") }), wantErr: "exp claim missing"},
		{name: "issued in the future", token: mint(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), wantErr: "issued in the future (iat)"},
		{name: "not valid yet", token: mint(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), wantErr: "nbf"},
		{name: "another issuer", token: mint(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), wantErr: "iss does not match"},
		{name: "no subject", token: mint(func(c jwt.MapClaims) { delete(c, "sub") }), wantErr: "sub claim missing"},
		{name: "another key under the server's kid", token: signWith(jwtRSAKeyB(), jwt.SigningMethodRS256, s.KeyID()), wantErr: "signature invalid"},
		{name: "a kid the server never published", token: signWith(jwtRSAKeyB(), jwt.SigningMethodRS256, "unpublished"), wantErr: "no key with the token's kid"},
		{name: "PS256 with the server's RS256-only key", token: signWith(s.Key(), jwt.SigningMethodPS256, s.KeyID()), wantErr: "does not fit alg PS256"},
		{name: "alg none", token: unsignedToken(t, map[string]any{"alg": "none", "kid": s.KeyID()}, claims(nil), ""), wantErr: "algorithm none not allowed"},
		{name: "HS256", token: signWith([]byte("a-guessed-shared-secret"), jwt.SigningMethodHS256, s.KeyID()), wantErr: "algorithm HS256 not allowed"},
		{name: "tampered payload", token: func() string {
			parts := strings.Split(mint(nil), ".")
			parts[1] = b64([]byte(strings.Replace(string(mustB64Decode(t, parts[1])), `"bob"`, `"eve"`, 1)))
			return strings.Join(parts, ".")
		}(), wantErr: "signature invalid"},
		{name: "not a JWT", token: "opaque-token-value", wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := nonce
			if tt.noNonce {
				want = ""
			}
			c, err := p.VerifyIDToken(t.Context(), tt.token, want)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyIDToken: got %q, want success", err)
				}
				if got := (IDClaims{Subject: "u-1", PreferredUsername: "bob", Name: "Bob Builder"}); c != got {
					t.Errorf("claims: got %+v, want %+v", c, got)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyIDToken: got success, want a rejection naming %q", tt.wantErr)
			}
			if !errors.Is(err, ErrIDToken) || errors.Is(err, ErrUnavailable) {
				t.Errorf("error %q: want it to wrap ErrIDToken and not ErrUnavailable", err)
			}
			if errors.Is(err, ErrNonce) != tt.wantNonce {
				t.Errorf("error %q: got ErrNonce %v, want %v", err, !tt.wantNonce, tt.wantNonce)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantErr)
			}
			if c != (IDClaims{}) {
				t.Errorf("claims on rejection: got %+v, want none", c)
			}
			assertNoTokenInError(t, err, tt.token)
			assertNoSecret(t, "error", err.Error(), map[string]string{"nonce": nonce})
		})
	}
}

// TestVerifyIDTokenKeys checks where VerifyIDToken finds the issuer's
// keys: the JWKS override (of a Provider made without discovery, or over a
// discovered jwks_uri), else the discovered jwks_uri, and that a JWKS that
// cannot be fetched is not the token's fault.
func TestVerifyIDTokenKeys(t *testing.T) {
	s := idptest.New(t, idptest.Options{Key: sharedKey()})
	token := s.MintJWT(t, jwt.MapClaims{"iss": s.Issuer(), "aud": idptest.PublicClientID, "sub": "u-1", "exp": time.Now().Add(time.Hour).Unix()})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	tests := []struct {
		name          string
		edit          func(*Account)
		known         bool  // NewProvider, not DiscoverProvider
		wantErr       error // nil: accepted
		wantDiscovery int
	}{
		{name: "discovered jwks_uri", wantDiscovery: 1},
		{name: "jwks override, no discovery", edit: func(a *Account) { a.Endpoints.JWKS = s.URL + "/jwks" }, known: true},
		{name: "jwks override over the discovered one", edit: func(a *Account) { a.Endpoints.JWKS = gone.URL + "/jwks" }, wantErr: ErrUnavailable, wantDiscovery: 1},
		{name: "jwks unreachable", edit: func(a *Account) { a.Endpoints.JWKS = gone.URL + "/jwks" }, known: true, wantErr: ErrUnavailable},
		{name: "discovery unreachable", edit: func(a *Account) { a.Issuer = gone.URL }, wantErr: ErrUnavailable},
		{name: "jwks over plain http off loopback", edit: func(a *Account) { a.Endpoints.JWKS = "http://idp.example/jwks" }, known: true, wantErr: errAny},
		{name: "no client id", edit: func(a *Account) { a.ClientID = "" }, wantErr: ErrIDToken, wantDiscovery: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.ResetCalls()
			acct := clientAccount(s, idptest.PublicClientID)
			if tt.edit != nil {
				tt.edit(&acct)
			}
			var p *Provider
			var err error
			if tt.known {
				p = known(t, acct)
			} else {
				p, err = DiscoverProvider(t.Context(), acct, ProviderOptions{})
			}
			if err == nil {
				_, err = p.VerifyIDToken(t.Context(), token, "")
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("VerifyIDToken: got %q, want success", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("VerifyIDToken: got success, want an error wrapping %q", tt.wantErr)
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("VerifyIDToken: got %q, want an error wrapping %q", err, tt.wantErr)
			case errors.Is(tt.wantErr, ErrUnavailable) && errors.Is(err, ErrIDToken):
				t.Errorf("VerifyIDToken: got %q, want a fault that does not blame the token", err)
			}
			if got := s.DiscoveryFetches(); got != tt.wantDiscovery {
				t.Errorf("discovery fetches: got %d, want %d", got, tt.wantDiscovery)
			}
		})
	}
}

// checkFault checks a non-nil err: it carries an *IdPError with code
// wantIdP (none when empty), wraps ErrUnavailable exactly when unavailable
// says so, contains wantMsg and none of secrets.
func checkFault(t *testing.T, err error, wantIdP string, unavailable bool, wantMsg string, secrets map[string]string) {
	t.Helper()
	var ie *IdPError
	switch {
	case wantIdP == "" && errors.As(err, &ie):
		t.Errorf("error: got IdP error %q, want none", ie.Code)
	case wantIdP != "" && (!errors.As(err, &ie) || ie.Code != wantIdP):
		t.Errorf("error: got %q, want an IdP error %q", err, wantIdP)
	}
	if got := errors.Is(err, ErrUnavailable); got != unavailable {
		t.Errorf("error %q: got ErrUnavailable %v, want %v", err, got, unavailable)
	}
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error: got %q, want it to contain %q", err, wantMsg)
	}
	assertNoSecret(t, "error", err.Error(), secrets)
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")

// TestGrantFaults injects faults in front of a real token endpoint: the
// code exchange (x/oauth2) and Grant (a device code poll) make one attempt,
// tell the IdP's errors from transport faults, refuse redirects and quote
// no secret; Grant leaves the caller's form unchanged.
func TestGrantFaults(t *testing.T) {
	s := idptest.New(t, idptest.Options{Key: sharedKey()})
	const code, verifier = "code-secret-value-0123", "verifier-secret-value-4567"
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {idptest.LoginRedirectURI}, "code_verifier": {verifier}}
	secrets := map[string]string{"code": code, "code verifier": verifier}

	answer := func(status int, body string, header ...string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	tests := []struct {
		name        string
		answer      func(w http.ResponseWriter)
		wantIdP     string // IdPError code, "" for none
		unavailable bool
		wantErr     error  // wrapped as well, when set
		wantMsg     string // in the message, when set
	}{
		{name: "503", answer: answer(503, `{"error":"temporarily_unavailable"}`), wantIdP: "temporarily_unavailable", unavailable: true},
		{name: "429", answer: answer(429, `{}`, "Retry-After", "30"), wantIdP: "http_429", unavailable: true},
		{name: "400", answer: answer(400, `{"error":"invalid_grant","error_description":"bad code"}`), wantIdP: "invalid_grant"},
		{name: "error echoing the code", answer: answer(400, `{"error":"invalid_grant","error_description":"code `+code+` is unknown"}`), wantIdP: "invalid_grant", wantMsg: redacted},
		{name: "redirect", answer: answer(307, ``, "Location", "https://elsewhere.example/token?x=1"), wantErr: ErrRedirect},
		{name: "not json", answer: answer(200, `<html>`+code), wantMsg: "malformed token response"},
		{name: "no access token", answer: answer(200, `{"token_type":"Bearer","id_token":"x.y.z"}`), wantMsg: "access_token"},
	}
	callers := map[string]func(p *Provider) error{
		"code exchange": func(p *Provider) error {
			_, err := exchange(t.Context(), p, form)
			return err
		},
		"device poll": func(p *Provider) error {
			poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {code}}
			sent := maps.Clone(poll)
			_, err := p.Grant(t.Context(), poll)
			if !maps.EqualFunc(poll, sent, slices.Equal) {
				t.Errorf("form after Grant: got %d keys, want the caller's %d unchanged", len(poll), len(sent))
			}
			return err
		},
	}
	for _, tt := range tests {
		for call, do := range callers {
			t.Run(call+"/"+tt.name, func(t *testing.T) {
				var calls atomic.Int32
				s.Fault(func(w http.ResponseWriter, r *http.Request) bool {
					if r.URL.Path != "/token" {
						return false
					}
					calls.Add(1)
					tt.answer(w)
					return true
				})
				t.Cleanup(func() { s.Fault(nil) })
				err := do(discovered(t, clientAccount(s, idptest.PublicClientID)))
				if err == nil {
					t.Fatal("got success, want an error")
				}
				if got := calls.Load(); got != 1 {
					t.Errorf("token requests: got %d, want 1 (never retried)", got)
				}
				checkFault(t, err, tt.wantIdP, tt.unavailable, tt.wantMsg, secrets)
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error: got %q, want it to wrap %q", err, tt.wantErr)
				}
			})
		}
	}
}

// deviceEndpoint is an RFC 8628 device authorization endpoint (idptest has
// none) answering with a scripted status and body.
type deviceEndpoint struct {
	srv *httptest.Server

	mu     sync.Mutex // guards the fields below
	status int
	body   string
	forms  []url.Values
	auths  []string
}

func newDeviceEndpoint(t *testing.T, status int, body string) *deviceEndpoint {
	d := &deviceEndpoint{status: status, body: body}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.forms = append(d.forms, r.PostForm)
		d.auths = append(d.auths, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(d.status)
		w.Write([]byte(d.body))
	}))
	t.Cleanup(d.srv.Close)
	return d
}

const testDeviceCode = "device-code-secret-Zq8v"

func TestAuthorizeDevice(t *testing.T) {
	d := newDeviceEndpoint(t, 200, `{"device_code":"`+testDeviceCode+`","user_code":"WDJB\u001b-MJHT","verification_uri":"https://idp.example/activate",`+
		`"verification_uri_complete":"https://idp.example/activate?user_code=WDJB-MJHT","expires_in":"600","interval":7}`)
	acct := Account{Name: "work", Kind: KindOIDC, Issuer: "https://idp.example", ClientID: "ncagent", ClientSecret: "client-secret-value",
		Endpoints: Endpoints{DeviceAuthorization: d.srv.URL + "/device"}}
	da, err := known(t, acct).AuthorizeDevice(t.Context(), []string{"openid", "files"})
	if err != nil {
		t.Fatalf("AuthorizeDevice: %v", err)
	}
	want := DeviceAuthorization{
		DeviceCode: testDeviceCode, UserCode: "WDJB-MJHT", VerificationURI: "https://idp.example/activate",
		VerificationURIComplete: "https://idp.example/activate?user_code=WDJB-MJHT", ExpiresIn: 600 * time.Second, Interval: 7 * time.Second,
	}
	if da != want {
		t.Errorf("got %+v, want %+v", da, want)
	}
	assertNoSecret(t, "printed device authorization", fmt.Sprintf("%v %+v %#v", da, da, da), map[string]string{"device code": testDeviceCode})
	d.mu.Lock()
	form, auth := d.forms[0], d.auths[0]
	d.mu.Unlock()
	if got := form.Get("scope"); got != "openid files" {
		t.Errorf("scope: got %q, want %q", got, "openid files")
	}
	// https://www.rfc-editor.org/rfc/rfc8628#section-3.1: the client
	// authenticates as at the token endpoint (here client_secret_basic).
	if user, pass, ok := (&http.Request{Header: http.Header{"Authorization": {auth}}}).BasicAuth(); !ok || user != "ncagent" || pass != "client-secret-value" {
		t.Errorf("Authorization: got user %q, want Basic credentials of client %q", user, "ncagent")
	}
	if form.Has("client_secret") {
		t.Error("form: got client_secret, want it only in the Authorization header")
	}
}

func TestAuthorizeDeviceFaults(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		wantIdP     string
		unavailable bool
		wantMsg     string
	}{
		{name: "unknown client", status: 401, body: `{"error":"invalid_client"}`, wantIdP: "invalid_client"},
		{name: "server error", status: 500, body: `oops`, wantIdP: "http_500", unavailable: true},
		{name: "no user code", status: 200, body: `{"device_code":"` + testDeviceCode + `","verification_uri":"https://idp.example/a"}`, wantMsg: "lacks"},
		{name: "malformed", status: 200, body: `{"device_code":"` + testDeviceCode + `",`, wantMsg: "malformed response"},
		{name: "negative interval", status: 200, body: `{"device_code":"` + testDeviceCode + `","user_code":"A","verification_uri":"https://idp.example/a","interval":-5}`, wantMsg: "malformed response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeviceEndpoint(t, tt.status, tt.body)
			acct := Account{Name: "work", Kind: KindOIDC, ClientID: "ncagent", Endpoints: Endpoints{DeviceAuthorization: d.srv.URL}}
			_, err := known(t, acct).AuthorizeDevice(t.Context(), nil)
			if err == nil {
				t.Fatal("AuthorizeDevice: got success, want an error")
			}
			checkFault(t, err, tt.wantIdP, tt.unavailable, tt.wantMsg, map[string]string{"device code": testDeviceCode})
		})
	}

	t.Run("issuer without device endpoint", func(t *testing.T) {
		s := idptest.New(t, idptest.Options{Key: sharedKey()})
		_, err := discovered(t, clientAccount(s, idptest.PublicClientID)).AuthorizeDevice(t.Context(), nil)
		if err == nil || !strings.Contains(err.Error(), "no device authorization endpoint") {
			t.Errorf("got %v, want an error naming the missing device authorization endpoint", err)
		}
	})
}

func TestUserinfoFaults(t *testing.T) {
	s := idptest.New(t, idptest.Options{Key: sharedKey()})
	const bogus = "not-an-access-token-of-this-server"
	_, err := discovered(t, clientAccount(s, idptest.PublicClientID)).Userinfo(t.Context(), bogus)
	var ie *IdPError
	if !errors.As(err, &ie) || ie.StatusCode != http.StatusUnauthorized || errors.Is(err, ErrUnavailable) {
		t.Errorf("unknown token: got %v, want an HTTP 401 IdPError", err)
	}
	if err != nil {
		assertNoSecret(t, "error", err.Error(), map[string]string{"access token": bogus})
	}

	s.EditDiscovery(func(doc map[string]any) { delete(doc, "userinfo_endpoint") })
	_, err = discovered(t, clientAccount(s, idptest.PublicClientID)).Userinfo(t.Context(), bogus)
	if err == nil || !strings.Contains(err.Error(), "no userinfo endpoint") {
		t.Errorf("no endpoint: got %v, want an error naming the missing userinfo endpoint", err)
	}
}

// FuzzParseJWKS: parseJWKS never panics, and every key it returns is a
// public key usable with some allowed algorithm.
func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksDoc(rsaTestKey("rsa-1", jwtRSAKeyA())))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AA","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(body)
		if err != nil {
			return
		}
		for _, k := range keys {
			if !slices.ContainsFunc(defaultAlgs, k.usableFor) {
				t.Fatalf("parseJWKS: got a %T key usable with no allowed algorithm", k.key)
			}
		}
	})
}

// FuzzParseDeviceAuthorization: the device authorization response parser
// never panics, never quotes the body in an error, and returns only
// complete answers with a printable user code and no negative durations.
func FuzzParseDeviceAuthorization(f *testing.F) {
	for _, s := range []string{
		`{"device_code":"dc-secret-1234","user_code":"WDJB-MJHT","verification_uri":"https://idp.example/a","expires_in":600,"interval":5}`,
		`{"device_code":"dc","user_code":"A\u0007B","verification_uri":"u","expires_in":"60"}`,
		`{"device_code":"dc"}`, `{`, `null`, `{"interval":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		da, err := parseDeviceAuthorization("device authorization", body)
		if err != nil {
			if len(body) >= 8 && strings.Contains(err.Error(), string(body)) {
				t.Fatal("the error quotes the body")
			}
			var m map[string]any
			if json.Unmarshal(body, &m) == nil {
				if dc, ok := m["device_code"].(string); ok && len(dc) >= 8 && strings.Contains(err.Error(), dc) {
					t.Fatal("the error quotes the device code")
				}
			}
			return
		}
		if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
			t.Fatal("accepted an answer without device_code, user_code or verification_uri")
		}
		if strings.ContainsFunc(da.UserCode, unicode.IsControl) || len(da.UserCode) > 64+len("…") {
			t.Fatalf("user code not cleaned: %q", da.UserCode)
		}
		if da.ExpiresIn < 0 || da.Interval < 0 {
			t.Fatal("accepted a negative duration")
		}
	})
}

// TestExtraSeconds: refresh_expires_in as x/oauth2 leaves it in Extra, a
// JSON number or a numeric string; anything else is "not sent".
func TestExtraSeconds(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want time.Duration
	}{
		{float64(1800), 30 * time.Minute},
		{"1800", 30 * time.Minute},
		{float64(-5), 0},
		{"soon", 0},
		{nil, 0},
		{true, 0},
	} {
		if got := extraSeconds(tt.in); got != tt.want {
			t.Errorf("extraSeconds(%#v): got %s, want %s", tt.in, got, tt.want)
		}
	}
}
