package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func exchangeOK(form url.Values) (int, any) {
	return 200, map[string]any{
		"access_token":      "session-for-" + form.Get("audience"),
		"token_type":        "Bearer",
		"expires_in":        120,
		"issued_token_type": tokenTypeAccess,
	}
}

func TestExchangeForm(t *testing.T) {
	tests := []struct {
		name     string
		req      ExchangeRequest
		acct     func(*Account)
		wantForm map[string]string // "" value: must be absent
	}{
		{"pure, defaults", ExchangeRequest{SubjectToken: "opaque-subject"}, nil, map[string]string{
			"grant_type": grantTokenExchange, "subject_token": "opaque-subject", "subject_token_type": tokenTypeAccess,
			"audience": "nextcloud", "actor_token": "", "actor_token_type": "", "client_id": "ncagent",
		}},
		{"account audience", ExchangeRequest{SubjectToken: "s"}, func(a *Account) { a.Audience = "files-api" }, map[string]string{"audience": "files-api"}},
		{"scopes and audience", ExchangeRequest{SubjectToken: "s", Audience: "mail", Scopes: []string{"b", "a"}}, nil, map[string]string{"audience": "mail", "scope": "a b"}},
		{"delegation", ExchangeRequest{SubjectToken: "s", ActorToken: "actor-tok"}, nil, map[string]string{
			"actor_token": "actor-tok", "actor_token_type": tokenTypeAccess,
		}},
		{"confidential post", ExchangeRequest{SubjectToken: "s"}, func(a *Account) { a.ClientAuth, a.ClientSecret = ClientAuthPost, "cs" }, map[string]string{"client_secret": "cs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			f.exchange = exchangeOK
			tb := newTestBroker(t, f, tt.acct)
			tt.req.Account = "work"
			got, err := tb.Exchange(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got.IssuedTokenType != tokenTypeAccess || got.TokenType != "Bearer" {
				t.Errorf("got issued %q type %q, want access token Bearer", got.IssuedTokenType, got.TokenType)
			}
			form := f.lastForm()
			for k, want := range tt.wantForm {
				if want == "" {
					if form.Has(k) {
						t.Errorf("form has %s, want it absent", k)
					}
					continue
				}
				if got := form.Get(k); got != want {
					t.Errorf("form %s: got %q, want %q", k, got, want)
				}
			}
			if f.refreshCalls() != 0 {
				t.Error("exchange used the refresh grant")
			}
		})
	}
}

func TestExchangeCaching(t *testing.T) {
	for _, cache := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[cache], func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			var n int
			var mu sync.Mutex
			f.exchange = func(form url.Values) (int, any) {
				mu.Lock()
				n++
				mu.Unlock()
				return exchangeOK(form)
			}
			tb := newTestBroker(t, f, func(a *Account) { a.CacheExchanged = cache })
			for range 3 {
				if _, err := tb.Exchange(context.Background(), ExchangeRequest{Account: "work", SubjectToken: "subject-1"}); err != nil {
					t.Fatal(err)
				}
			}
			want := 3
			if cache {
				want = 1
			}
			if n != want {
				t.Errorf("got %d exchange calls, want %d", n, want)
			}
			tb.Exchange(context.Background(), ExchangeRequest{Account: "work", SubjectToken: "subject-2"})
			if cache && n != 2 {
				t.Errorf("another subject token: got %d calls, want 2", n)
			}
			if cache {
				a := tb.get("work")
				a.mu.RLock()
				for k := range a.exchanged {
					if strings.Contains(string(k[:]), "subject") {
						t.Error("cache key holds the subject token")
					}
				}
				a.mu.RUnlock()
			}
		})
	}
}

func TestExchangeErrorsAndFallback(t *testing.T) {
	tests := []struct {
		name        string
		fallback    bool
		answer      string
		wantIdPCode string
		wantRefresh int
	}{
		{"rejected subject, no fallback", true, "invalid_grant", "invalid_grant", 0},
		{"unsupported without fallback", false, "unsupported_grant_type", "unsupported_grant_type", 0},
		{"unsupported with fallback", true, "unsupported_grant_type", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			f.exchange = func(url.Values) (int, any) { return 400, map[string]string{"error": tt.answer} }
			tb := newTestBroker(t, f, func(a *Account) { a.ExchangeFallbackRefresh = tt.fallback })
			got, err := tb.Exchange(context.Background(), ExchangeRequest{Account: "work", SubjectToken: "s"})
			if tt.wantIdPCode != "" {
				var ie *IdPError
				if !errors.As(err, &ie) || ie.Code != tt.wantIdPCode {
					t.Fatalf("got %v, want IdP error %q", err, tt.wantIdPCode)
				}
				if errors.Is(err, ErrNeedsLogin) {
					t.Error("a rejected subject token moved the account to needs-login")
				}
			} else if err != nil || got.AccessToken == "" {
				t.Fatalf("got %v, want a fallback token", err)
			}
			if got := f.refreshCalls(); got != tt.wantRefresh {
				t.Errorf("got %d refresh calls, want %d", got, tt.wantRefresh)
			}
			if st, _ := tb.AccountStatus("work"); st.State == StateNeedsLogin {
				t.Error("exchange changed the refresh chain's state")
			}
		})
	}
}

func TestExchangeJWTWithoutJWKSRefused(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	f.exchange = exchangeOK
	// No issuer: nothing to verify a JWT against.
	tb := newTestBroker(t, f, func(a *Account) { a.Issuer, a.Endpoints.Token = "", f.URL+"/token" })
	jwtish := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	_, err := tb.Exchange(context.Background(), ExchangeRequest{Account: "work", SubjectToken: Secret(jwtish)})
	if !errors.Is(err, ErrSubjectToken) {
		t.Fatalf("got %v, want ErrSubjectToken", err)
	}
	if f.lastForm() != nil {
		t.Error("the token endpoint was called")
	}
}

func TestRevokeOIDC(t *testing.T) {
	for _, withEndpoint := range []bool{true, false} {
		t.Run(map[bool]string{true: "with endpoint", false: "without endpoint"}[withEndpoint], func(t *testing.T) {
			f := newFakeIdP(t, "rt-0")
			f.noRevoke = !withEndpoint
			tb := newTestBroker(t, f, func(a *Account) { a.ClientAuth, a.ClientSecret = ClientAuthPost, "cs" })
			tok(t, tb.Broker, "files")
			tok(t, tb.Broker, "openid")
			res, err := tb.Revoke(context.Background(), "work")
			if err != nil {
				t.Fatal(err)
			}
			if !res.SecretDeleted || res.PurgedTokens != 2 {
				t.Errorf("got deleted=%v purged=%d, want true and 2", res.SecretDeleted, res.PurgedTokens)
			}
			if _, ok := tb.store.get("work"); ok {
				t.Error("the store still holds the secret")
			}
			st, _ := tb.AccountStatus("work")
			if st.State != StateSignedOut || len(st.Tokens) != 0 {
				t.Errorf("got state %q with %d tokens, want signed-out with none", st.State, len(st.Tokens))
			}
			f.mu.Lock()
			revoked := f.revoked
			f.mu.Unlock()
			if withEndpoint {
				if res.Where != "idp" || !res.ServerRevoked || res.Endpoint != f.URL+"/revoke" {
					t.Errorf("got where %q revoked=%v endpoint %q, want idp true %q", res.Where, res.ServerRevoked, res.Endpoint, f.URL+"/revoke")
				}
				if len(revoked) != 1 || revoked[0].Get("token") != "rt-2" || revoked[0].Get("token_type_hint") != "refresh_token" || revoked[0].Get("client_secret") != "cs" {
					t.Error("the revocation request lacks the current refresh token, its hint or client authentication")
				}
				if f.currentRefresh() != "" {
					t.Error("the IdP still accepts the refresh token")
				}
			} else {
				if res.Where != "" || res.ServerRevoked || !strings.Contains(res.Note, "no revocation endpoint") || !strings.Contains(res.Note, "Settings → Security") {
					t.Errorf("got where %q revoked=%v note %q, want a note on where to revoke consent", res.Where, res.ServerRevoked, res.Note)
				}
			}
			if _, err := tb.Token(context.Background(), TokenRequest{Account: "work"}); !errors.Is(err, ErrSignedOut) {
				t.Errorf("got %v after revoke, want ErrSignedOut", err)
			}
		})
	}
	t.Run("idp failure still forgets locally", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":"unsupported_token_type"}`, http.StatusBadRequest)
		}))
		defer srv.Close()
		f := newFakeIdP(t, "rt-0")
		tb := newTestBroker(t, f, func(a *Account) { a.Endpoints.Revocation = srv.URL })
		tok(t, tb.Broker)
		res, err := tb.Revoke(context.Background(), "work")
		if err != nil {
			t.Fatal(err)
		}
		if res.ServerRevoked || !res.SecretDeleted || !strings.Contains(res.Note, "unsupported_token_type") {
			t.Errorf("got revoked=%v deleted=%v note %q, want false, true and the reason", res.ServerRevoked, res.SecretDeleted, res.Note)
		}
	})
}

// fakeNextcloud answers app password deletion.
type fakeNextcloud struct {
	*httptest.Server
	mu      sync.Mutex // guards deletes, header
	deletes int
	user    string
	pass    string
	ocs     string
}

func newFakeNextcloud(t *testing.T) *fakeNextcloud {
	n := &fakeNextcloud{}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || r.URL.Path != "/ocs/v2.php/core/apppassword" {
			http.NotFound(w, r)
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.deletes++
		n.user, n.pass, _ = r.BasicAuth()
		n.ocs = r.Header.Get("OCS-APIRequest")
		w.Write([]byte(`{"ocs":{"meta":{"status":"ok","statuscode":200},"data":[]}}`))
	}))
	t.Cleanup(n.Close)
	return n
}

func TestAppPassword(t *testing.T) {
	nc := newFakeNextcloud(t)
	store := newMemStore()
	b := New(Options{Store: store})
	if err := b.SetAccount(Account{Name: "home", Kind: KindAppPassword, Server: nc.URL, Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	store.set("home", "app-pass-1")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:app-pass-1"))
	for _, get := range []func() (Token, error){
		func() (Token, error) { return b.Token(context.Background(), TokenRequest{Account: "home"}) },
		func() (Token, error) {
			return b.Exchange(context.Background(), ExchangeRequest{Account: "home", SubjectToken: "anything"})
		},
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if got.TokenType != "Basic" || got.Authorization() != want || !got.Expiry.IsZero() || got.Username != "alice" {
			t.Errorf("got type %q expiry %v user %q, want a Basic credential without expiry for alice", got.TokenType, got.Expiry, got.Username)
		}
	}
	res, err := b.Revoke(context.Background(), "home")
	if err != nil {
		t.Fatal(err)
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.deletes != 1 || nc.user != "alice" || nc.pass != "app-pass-1" || nc.ocs != "true" {
		t.Errorf("got %d deletes as %q with OCS-APIRequest %q, want 1 as alice with true", nc.deletes, nc.user, nc.ocs)
	}
	if res.Where != "nextcloud" || !res.ServerRevoked || !res.SecretDeleted || res.PurgedTokens != 1 {
		t.Errorf("got %+v, want a nextcloud revocation with the secret deleted and 1 token purged", res)
	}
	if _, err := b.Token(context.Background(), TokenRequest{Account: "home"}); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("got %v after revoke, want ErrNeedsLogin", err)
	}
}

func TestAppPasswordMarkNeedsLogin(t *testing.T) {
	store := newMemStore()
	b := New(Options{Store: store})
	b.SetAccount(Account{Name: "home", Kind: KindAppPassword, Server: "http://127.0.0.1:1", Username: "alice"})
	store.set("home", "app-pass-1")
	if _, err := b.Token(context.Background(), TokenRequest{Account: "home"}); err != nil {
		t.Fatal(err)
	}
	b.MarkNeedsLogin("home", errors.New("401 from nextcloud"))
	if _, err := b.Token(context.Background(), TokenRequest{Account: "home"}); !errors.Is(err, ErrNeedsLogin) {
		t.Errorf("got %v, want ErrNeedsLogin", err)
	}
	if err := b.SignedIn(context.Background(), "home", "app-pass-2", nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Token(context.Background(), TokenRequest{Account: "home"})
	if err != nil || got.Authorization() != "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:app-pass-2")) {
		t.Errorf("got error %v, want the new app password's credential", err)
	}
}
