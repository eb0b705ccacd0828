package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/ncagent/ncagent/internal/idptest"
)

// grantScopes are the scopes every integration sign-in asks for.
var grantScopes = []string{"openid", "offline_access", "files", "files.read", "calendar", "contacts", "profile", "email", "mcp"}

// sharedKey saves generating an RSA key per idptest server.
var sharedKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type integration struct {
	idp    *idptest.Server
	b      *Broker
	store  *memStore
	events *eventLog
	login  idptest.Tokens
}

// newIntegration starts an idptest server, signs in as clientID and
// configures account "work" with the resulting refresh token in the store.
func newIntegration(t *testing.T, opts idptest.Options, clientID string, logger *slog.Logger) *integration {
	t.Helper()
	if opts.Key == nil {
		opts.Key = sharedKey()
	}
	idp := idptest.New(t, opts)
	it := &integration{idp: idp, store: newMemStore(), events: &eventLog{}}
	it.login = idp.Login(t, clientID, grantScopes...)
	it.store.set("work", Secret(it.login.RefreshToken))
	it.b = New(Options{Store: it.store, Logger: logger, OnEvent: it.events.add})
	it.b.backoffBase = time.Millisecond
	a := Account{Name: "work", Kind: KindOIDC, Issuer: idp.Issuer(), ClientID: clientID, Scopes: []string{"openid", "files"}, CAPEM: idp.CAPEM()}
	switch clientID {
	case idptest.ConfidentialClientID:
		a.ClientAuth, a.ClientSecret = ClientAuthBasic, Secret(idp.ConfidentialSecret)
	case idptest.PostClientID:
		a.ClientAuth, a.ClientSecret = ClientAuthPost, Secret(idp.PostSecret)
	}
	if err := it.b.SetAccount(a); err != nil {
		t.Fatal(err)
	}
	idp.ResetCalls()
	return it
}

func (it *integration) memRefresh() Secret {
	a := it.b.get("work")
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.secret
}

func TestIntegrationClients(t *testing.T) {
	for _, client := range []string{idptest.PublicClientID, idptest.ConfidentialClientID, idptest.PostClientID} {
		for _, tlsOn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s tls=%v", client, tlsOn), func(t *testing.T) {
				it := newIntegration(t, idptest.Options{TLS: tlsOn}, client, nil)
				got, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files"}})
				if err != nil {
					t.Fatal(err)
				}
				active, scopes, _ := it.idp.Introspect(got.AccessToken.Reveal())
				if !active || strings.Join(scopes, " ") != "files" {
					t.Errorf("got active=%v scopes %q, want an active token narrowed to files", active, strings.Join(scopes, " "))
				}
				if it.idp.Calls("refresh_token") != 1 {
					t.Errorf("got %d refresh calls, want 1", it.idp.Calls("refresh_token"))
				}
			})
		}
	}
}

func TestIntegrationConcurrentScopeSets(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	sets := [][]string{
		{"openid"}, {"files"}, {"files.read"}, {"calendar"}, {"contacts"},
		{"openid", "files"}, {"calendar", "contacts"}, {"profile", "email"},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sc := sets[i%len(sets)]
			got, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc})
			if err != nil {
				errs <- err
				return
			}
			if active, _, _ := it.idp.Introspect(got.AccessToken.Reveal()); !active {
				errs <- fmt.Errorf("scopes %v: got an inactive token", sc)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One refresh per scope set: the IdP narrows scope on refresh, so
	// single-token mode must not engage.
	if calls := it.idp.Calls("refresh_token"); calls != len(sets) {
		t.Errorf("got %d refresh calls, want %d (one per scope set)", calls, len(sets))
	}
	if st, _ := it.b.AccountStatus("work"); st.SingleToken || len(st.Tokens) != len(sets) {
		t.Errorf("got single-token %v with %d cached tokens, want false with %d", st.SingleToken, len(st.Tokens), len(sets))
	}
	if st, _ := it.b.AccountStatus("work"); st.State != StateSignedIn || st.LastError != "" {
		t.Errorf("got state %q last error %q, want signed-in without error (no invalid_grant)", st.State, st.LastError)
	}
	if it.events.has(StateNeedsLogin) {
		t.Error("got a needs-login event")
	}
	rt := it.memRefresh()
	if !it.idp.RefreshTokenActive(rt.Reveal()) {
		t.Fatal("the grant is dead after the concurrent refreshes")
	}
	if s, _ := it.store.get("work"); s != rt {
		t.Error("the store does not hold the newest refresh token")
	}
	// And still usable.
	it.b.get("work").mu.Lock()
	it.b.get("work").tokens = nil
	it.b.get("work").mu.Unlock()
	if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work"}); err != nil {
		t.Errorf("refresh after the burst: %v", err)
	}
}

func TestIntegrationColdKeyOneRefresh(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	distinct := map[Secret]bool{}
	for range 500 {
		wg.Go(func() {
			got, err := it.b.Token(context.Background(), TokenRequest{Account: "work", Scopes: []string{"files", "calendar"}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			distinct[got.AccessToken] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if got := it.idp.Calls("refresh_token"); got != 1 {
		t.Errorf("got %d refresh calls, want exactly 1", got)
	}
	if len(distinct) != 1 {
		t.Errorf("got %d distinct tokens, want 1", len(distinct))
	}
}

func TestIntegrationRotation(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	ctx := context.Background()
	var old []Secret
	prev := Secret(it.login.RefreshToken)
	for i, sc := range [][]string{{"files"}, {"calendar"}, {"contacts"}, {"openid"}} {
		if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc}); err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		cur := it.memRefresh()
		if cur == prev {
			t.Fatalf("refresh %d: the refresh token did not rotate", i)
		}
		if s, _ := it.store.get("work"); s != cur {
			t.Errorf("refresh %d: the store does not hold the newest refresh token", i)
		}
		old = append(old, prev)
		prev = cur
	}
	for i, o := range old {
		if it.idp.RefreshTokenActive(o.Reveal()) {
			t.Errorf("superseded refresh token %d is still active", i)
		}
	}
	if !it.idp.RefreshTokenActive(prev.Reveal()) {
		t.Error("the newest refresh token is not active")
	}

	t.Run("store write fails", func(t *testing.T) {
		it.store.failPuts(errStoreLocked)
		for i, sc := range [][]string{{"profile"}, {"email"}, {"files.read"}} {
			if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc}); err != nil {
				t.Fatalf("refresh %d with a failing store: %v", i, err)
			}
		}
		st, _ := it.b.AccountStatus("work")
		if !st.Degraded {
			t.Error("got degraded false, want true")
		}
		if it.events.has(StateNeedsLogin) || !it.idp.RefreshTokenActive(it.memRefresh().Reveal()) {
			t.Fatal("the chain broke while the store was failing")
		}
		if s, _ := it.store.get("work"); s == it.memRefresh() {
			t.Error("the store holds the newest token although writes fail")
		}
		it.store.failPuts(nil)
		if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"talk"}}); err == nil {
			// talk was not granted at sign-in: the IdP refuses the scope,
			// but the store write is retried before the refresh anyway.
			t.Log("talk was granted")
		}
		if s, _ := it.store.get("work"); s != it.memRefresh() {
			t.Error("the store did not catch up once writable")
		}
		if st, _ := it.b.AccountStatus("work"); st.Degraded || st.State != StateSignedIn {
			t.Errorf("got degraded=%v state %q, want recovered", st.Degraded, st.State)
		}
		if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"openid", "calendar"}}); err != nil {
			t.Errorf("refresh after recovery: %v", err)
		}
	})
}

func TestIntegrationRevoke(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.ConfidentialClientID, nil)
	ctx := context.Background()
	for _, sc := range [][]string{{"files"}, {"calendar"}, {"openid"}} {
		if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc}); err != nil {
			t.Fatal(err)
		}
	}
	rt := it.memRefresh()
	res, err := it.b.Revoke(ctx, "work")
	if err != nil {
		t.Fatal(err)
	}
	if !res.ServerRevoked || res.Where != "idp" || !res.SecretDeleted || res.PurgedTokens != 3 {
		t.Errorf("got %+v, want revoked at the idp, secret deleted, 3 tokens purged", res)
	}
	if it.idp.RefreshTokenActive(rt.Reveal()) {
		t.Error("the IdP still accepts the revoked refresh token")
	}
	if st, _ := it.b.AccountStatus("work"); len(st.Tokens) != 0 || st.State != StateSignedOut {
		t.Errorf("got %d cached tokens in state %q, want none, signed-out", len(st.Tokens), st.State)
	}
}

func TestIntegrationSingleTokenMode(t *testing.T) {
	it := newIntegration(t, idptest.Options{IgnoreScopeOnRefresh: true}, idptest.PublicClientID, nil)
	ctx := context.Background()
	first, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"files"}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := it.b.AccountStatus("work")
	if !st.SingleToken {
		t.Fatal("got SingleToken false against an IdP that ignores scope")
	}
	second, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"calendar"}})
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken != first.AccessToken {
		t.Error("a sibling scope set got another token")
	}
	if active, _, _ := it.idp.Introspect(second.AccessToken.Reveal()); !active {
		t.Error("the served token is not active")
	}
	if got := it.idp.Calls("refresh_token"); got != 1 {
		t.Errorf("got %d refresh calls, want 1", got)
	}
}

func TestIntegrationKeepAliveRefreshExpiresIn(t *testing.T) {
	it := newIntegration(t, idptest.Options{SendRefreshExpiresIn: true, RefreshTokenLifespan: 20 * time.Minute}, idptest.PublicClientID, nil)
	if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	st, _ := it.b.AccountStatus("work")
	left := time.Until(st.RefreshExpiry)
	if left < 19*time.Minute || left > 21*time.Minute {
		t.Errorf("got refresh expiry in %v, want about 20m", left)
	}
	a := it.b.get("work")
	a.mu.RLock()
	next := time.Until(a.nextKeep)
	a.mu.RUnlock()
	if next < 14*time.Minute || next > 16*time.Minute {
		t.Errorf("got next keep-alive in %v, want about 15m (75%% of 20m)", next)
	}
}

func TestIntegrationExchange(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.ConfidentialClientID, nil)
	ctx := context.Background()
	idp := it.idp
	iss := idp.Issuer()
	valid := jwt.MapClaims{"iss": iss, "sub": "bob", "aud": "mcp-server", "exp": time.Now().Add(5 * time.Minute).Unix(), "scope": "files calendar"}
	userTok := idp.MintJWT(t, valid)

	t.Run("pure", func(t *testing.T) {
		got, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(userTok), SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt", Scopes: []string{"files"}})
		if err != nil {
			t.Fatal(err)
		}
		info := idp.Inspect(got.AccessToken.Reveal())
		if !info.Active || info.Subject != "bob" || strings.Join(info.Audience, " ") != "nextcloud" || strings.Join(info.Scopes, " ") != "files" {
			t.Errorf("got active=%v sub %q aud %v scopes %v, want bob, nextcloud, files", info.Active, info.Subject, info.Audience, info.Scopes)
		}
		if got.IssuedTokenType != tokenTypeAccess {
			t.Errorf("got issued token type %q, want %q", got.IssuedTokenType, tokenTypeAccess)
		}
		if info.Extra["act"] != nil {
			t.Error("a pure exchange carries an act claim")
		}
	})
	t.Run("delegation", func(t *testing.T) {
		actor, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"openid"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(userTok), SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt", ActorToken: actor.AccessToken, Audience: "files-api"})
		if err != nil {
			t.Fatal(err)
		}
		info := idp.Inspect(got.AccessToken.Reveal())
		act, _ := info.Extra["act"].(map[string]any)
		if !info.Active || info.Subject != "bob" || act == nil || act["sub"] != idptest.DefaultSubject {
			t.Errorf("got active=%v sub %q act %v, want bob acted on by %s", info.Active, info.Subject, info.Extra["act"], idptest.DefaultSubject)
		}
	})

	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tk := jwt.NewWithClaims(method, claims)
		tk.Header["kid"] = idp.KeyID()
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	pubDER := func() []byte {
		// The public key as an HMAC secret: the classic alg confusion.
		return []byte(fmt.Sprintf("%x", idp.Key().PublicKey.N.Bytes()))
	}
	bad := []struct{ name, token string }{
		{"forged (wrong key)", sign(jwt.SigningMethodRS256, otherKey, valid)},
		{"expired", idp.MintJWT(t, with("exp", time.Now().Add(-time.Hour).Unix()))},
		{"wrong audience", idp.MintJWT(t, with("aud", "someone-else"))},
		{"wrong issuer", idp.MintJWT(t, with("iss", "https://evil.example.com"))},
		{"no exp", idp.MintJWT(t, func() jwt.MapClaims { c := with("sub", "bob"); delete(c, "exp"); return c }())},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)},
		{"HS256 with the public key", sign(jwt.SigningMethodHS256, pubDER(), valid)},
	}
	before := idp.Calls("urn:ietf:params:oauth:grant-type:token-exchange")
	for _, tt := range bad {
		t.Run("refused "+tt.name, func(t *testing.T) {
			_, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(tt.token), SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt"})
			if !errors.Is(err, ErrSubjectToken) {
				t.Fatalf("got %v, want ErrSubjectToken", err)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Error("the error carries the subject token")
			}
		})
	}
	if got := idp.Calls("urn:ietf:params:oauth:grant-type:token-exchange"); got != before {
		t.Errorf("got %d token-exchange calls for refused subject tokens, want 0", got-before)
	}
}

func TestIntegrationLogsCarryNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	it := newIntegration(t, idptest.Options{}, idptest.ConfidentialClientID, logger)
	ctx := context.Background()
	var secrets []string
	remember := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v)
			}
		}
	}
	remember(it.login.RefreshToken, it.login.AccessToken, it.idp.ConfidentialSecret)
	for _, sc := range [][]string{{"files"}, {"calendar"}, {"files"}} {
		got, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		remember(got.AccessToken.Reveal(), it.memRefresh().Reveal())
		logger.Debug("served", "token", got, "secret", got.AccessToken)
	}
	subject := it.idp.MintJWT(t, jwt.MapClaims{"iss": it.idp.Issuer(), "sub": "bob", "aud": "mcp-server", "exp": time.Now().Add(time.Minute).Unix(), "scope": "files"})
	remember(subject)
	ex, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(subject), SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt"})
	if err != nil {
		t.Fatal(err)
	}
	remember(ex.AccessToken.Reveal())
	// Faults: an expired subject token, an invalid_grant, then revoke.
	expired := it.idp.MintJWT(t, jwt.MapClaims{"iss": it.idp.Issuer(), "sub": "bob", "aud": "mcp-server", "exp": time.Now().Add(-time.Hour).Unix()})
	remember(expired)
	it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(expired)})
	it.b.get("work").mu.Lock()
	it.b.get("work").tokens = nil
	it.b.get("work").mu.Unlock()
	remember(it.memRefresh().Reveal())
	if !it.idp.Expire(it.memRefresh().Reveal()) {
		t.Fatal("could not expire the refresh token")
	}
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work"}); !errors.Is(err, ErrNeedsLogin) {
		t.Fatalf("got %v, want ErrNeedsLogin for an expired refresh token", err)
	}
	it.store.set("work", Secret(it.idp.Login(t, idptest.ConfidentialClientID, grantScopes...).RefreshToken))
	s, _ := it.store.get("work")
	remember(s.Reveal())
	if err := it.b.SignedIn(ctx, "work", s, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"contacts"}}); err != nil {
		t.Fatal(err)
	}
	remember(it.memRefresh().Reveal())
	it.b.Revoke(ctx, "work")

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "refresh") {
		t.Fatal("captured no refresh log lines: the capture does not work")
	}
	for i, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %d of %d appears in the log output", i, len(secrets))
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex // guards w
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
