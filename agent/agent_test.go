package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer = testutil.SyncBuffer

// e2e is a running agent on a real socket, with its secrets in the real
// Secret Service and its accounts at the in-process authorization server.
type e2e struct {
	idp    *idptest.Server
	kc     *Keychain
	agent  *Agent
	client *ipc.Client
	socket string
	logs   *syncBuffer
	// secrets are every token value the test saw, to look for in the logs.
	secrets []string
}

// startE2E provisions account "work" (signed in with scopes openid,
// offline_access, files, calendar) and starts the agent.
func startE2E(t *testing.T) *e2e {
	t.Helper()
	testutil.RequireSecretService(t)
	idp := idptest.New(t, idptest.Options{})
	service := "ncagent-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	kc := NewKeychain(service, 5*time.Second)
	tok := idp.Login(t, idptest.PublicClientID, "openid", "offline_access", "files", "calendar")
	if err := kc.Put("work", broker.Secret(tok.RefreshToken)); err != nil {
		t.Fatalf("keychain put: %v", err)
	}
	t.Cleanup(func() { kc.Delete("work") })

	dir := t.TempDir()
	cfg := &Config{Accounts: map[string]*AccountConfig{
		"work": {Kind: "oidc", Server: idp.Issuer(), Issuer: idp.Issuer(), ClientID: idptest.PublicClientID,
			Scopes: []string{"openid", "files", "calendar"}},
	}}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := cfg.Save(cfgPath); err != nil {
		t.Fatalf("save config: %v", err)
	}
	sockDir := testutil.ShortDir(t)
	socket := filepath.Join(sockDir, "agent.sock")

	logs := &syncBuffer{}
	a, err := New(Options{
		ConfigPath: cfgPath,
		Store:      kc,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Socket:     socket,
	})
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	e := &e2e{idp: idp, kc: kc, agent: a, socket: socket, logs: logs,
		secrets: []string{tok.RefreshToken, tok.AccessToken}}
	// Cleanups run last-registered first: these run after the agent stopped.
	t.Cleanup(func() {
		if _, err := os.Stat(socket); !os.IsNotExist(err) {
			t.Errorf("socket left behind after shutdown: %v", err)
		}
		e.checkLogs(t)
	})
	e.client = serveAgent(t, a, socket)
	return e
}

// checkLogs fails when any token value the test saw appears in the logs.
func (e *e2e) checkLogs(t *testing.T) {
	t.Helper()
	logs := e.logs.String()
	for i, s := range e.secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("agent log holds secret #%d", i)
		}
	}
}

func TestAgentEndToEnd(t *testing.T) {
	e := startE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Status before any token: the account is configured.
	st, err := e.client.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Accounts) != 1 || st.Accounts[0].Name != "work" || st.Accounts[0].Kind != "oidc" {
		t.Fatalf("status accounts: got %+v, want one oidc account work", st.Accounts)
	}
	if st.PID != os.Getpid() {
		t.Errorf("status pid: got %d, want %d", st.PID, os.Getpid())
	}

	// A background token, default account, default scopes.
	tok, err := e.client.Token(ctx, ipc.TokenRequest{})
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	e.secrets = append(e.secrets, tok.AccessToken)
	if tok.Account != "work" || tok.TokenType != "Bearer" || tok.Authorization != "Bearer "+tok.AccessToken {
		t.Errorf("token: got account %q type %q, want work Bearer with a matching authorization", tok.Account, tok.TokenType)
	}
	if tok.ExpiresIn <= 0 || tok.ExpiresAt.IsZero() || tok.Server != e.idp.Issuer() {
		t.Errorf("token: got expires_in %d server %q, want positive and %q", tok.ExpiresIn, tok.Server, e.idp.Issuer())
	}
	if active, _, _ := e.idp.Introspect(tok.AccessToken); !active {
		t.Errorf("token: the IdP says the access token is not active")
	}

	// A cache hit: same token, no new refresh.
	refreshes := e.idp.Calls("refresh_token")
	tok2, err := e.client.Token(ctx, ipc.TokenRequest{Account: "work"})
	if err != nil {
		t.Fatalf("token again: %v", err)
	}
	if tok2.AccessToken != tok.AccessToken {
		t.Errorf("second token request was not served from the cache")
	}
	if got := e.idp.Calls("refresh_token"); got != refreshes {
		t.Errorf("refresh calls after a cache hit: got %d, want %d", got, refreshes)
	}

	// Down-scoped token.
	small, err := e.client.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: ipc.Scopes{"files"}})
	if err != nil {
		t.Fatalf("down-scoped token: %v", err)
	}
	e.secrets = append(e.secrets, small.AccessToken)
	if _, scopes, _ := e.idp.Introspect(small.AccessToken); strings.Join(scopes, " ") != "files" {
		t.Errorf("down-scoped token scopes: got %q, want %q", scopes, "files")
	}

	// Status shows the cached tokens and the chain's owner stored the newest
	// refresh token.
	st, _ = e.client.Status(ctx)
	if got := st.Accounts[0].State; got != "signed-in" {
		t.Errorf("state: got %q, want signed-in", got)
	}
	if len(st.Accounts[0].Tokens) == 0 {
		t.Errorf("status lists no cached tokens")
	}
	stored, err := e.kc.Get("work")
	if err != nil {
		t.Fatalf("keychain get: %v", err)
	}
	e.secrets = append(e.secrets, stored.Reveal())
	if !e.idp.RefreshTokenActive(stored.Reveal()) {
		t.Errorf("the keychain does not hold the live refresh token")
	}

	// Token exchange: an opaque subject token, and a JWT one.
	ex, err := e.client.Exchange(ctx, ipc.ExchangeRequest{Account: "work", SubjectToken: tok.AccessToken, Audience: "nextcloud"})
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	e.secrets = append(e.secrets, ex.AccessToken)
	if ex.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" {
		t.Errorf("exchange issued_token_type: got %q", ex.IssuedTokenType)
	}
	if _, _, aud := e.idp.Introspect(ex.AccessToken); !slices.Contains(aud, "nextcloud") {
		t.Errorf("exchanged token audience: got %q, want nextcloud", aud)
	}
	subject := e.idp.MintJWT(t, jwt.MapClaims{"iss": e.idp.Issuer(), "sub": "alice", "aud": "mcp-server",
		"exp": time.Now().Add(5 * time.Minute).Unix(), "scope": "files"})
	e.secrets = append(e.secrets, subject)
	if _, err := e.client.Exchange(ctx, ipc.ExchangeRequest{Account: "work", SubjectToken: subject,
		SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt", Audience: "nextcloud"}); err != nil {
		t.Errorf("exchange of a valid JWT subject token: %v", err)
	}
	expired := e.idp.MintJWT(t, jwt.MapClaims{"iss": e.idp.Issuer(), "sub": "alice", "aud": "mcp-server",
		"exp": time.Now().Add(-time.Hour).Unix()})
	exchanges := e.idp.Calls("urn:ietf:params:oauth:grant-type:token-exchange")
	_, err = e.client.Exchange(ctx, ipc.ExchangeRequest{Account: "work", SubjectToken: expired,
		SubjectTokenType: "urn:ietf:params:oauth:token-type:jwt"})
	wantCode(t, err, ipc.CodeInvalidRequest)
	if got := e.idp.Calls("urn:ietf:params:oauth:grant-type:token-exchange"); got != exchanges {
		t.Errorf("an expired subject token reached the IdP")
	}

	// Errors: unknown account, missing subject token.
	_, err = e.client.Token(ctx, ipc.TokenRequest{Account: "nosuch"})
	wantCode(t, err, ipc.CodeUnknownAccount)
	_, err = e.client.Exchange(ctx, ipc.ExchangeRequest{Account: "work"})
	wantCode(t, err, ipc.CodeInvalidRequest)

	// Revoke: the IdP refuses the refresh token, the keychain forgets it,
	// and every cached token is gone.
	rv, err := e.client.Revoke(ctx, ipc.RevokeRequest{Account: "work"})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if !rv.ServerRevoked || !rv.SecretDeleted || rv.Where != "idp" {
		t.Errorf("revoke: got %+v, want revoked at the idp and the secret deleted", rv)
	}
	if e.idp.RefreshTokenActive(stored.Reveal()) {
		t.Errorf("the IdP still accepts the revoked refresh token")
	}
	if _, err := e.kc.Get("work"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("keychain after revoke: got %v, want ErrNotFound", err)
	}
	_, err = e.client.Token(ctx, ipc.TokenRequest{Account: "work"})
	wantCode(t, err, ipc.CodeNeedsLogin)
	st, _ = e.client.Status(ctx)
	if len(st.Accounts[0].Tokens) != 0 {
		t.Errorf("cached tokens after revoke: got %d, want 0", len(st.Accounts[0].Tokens))
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var we *ipc.Error
	if !errors.As(err, &we) {
		t.Errorf("got error %v, want wire error %q", err, code)
		return
	}
	if we.Code != code {
		t.Errorf("got error code %q (%s), want %q", we.Code, we.Message, code)
	}
}
