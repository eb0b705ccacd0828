//go:build unix

package ipc

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

func TestClientRoundTrip(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	c := NewClient(ts.path)
	defer c.Close()
	ctx := context.Background()

	t.Run("status", func(t *testing.T) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != "test" || st.PID != os.Getpid() {
			t.Errorf("got version %q pid %d, want test %d", st.Version, st.PID, os.Getpid())
		}
		if st.Socket != ts.path {
			t.Errorf("got socket %q, want %q", st.Socket, ts.path)
		}
		if len(st.Accounts) != 1 || st.Accounts[0].Name != "work" {
			t.Errorf("got accounts %+v, want one named work", st.Accounts)
		}
	})
	t.Run("token", func(t *testing.T) {
		tok, err := c.Token(ctx, TokenRequest{Account: "work", Scopes: Scopes{"openid", "files"}, ClientHint: "test"})
		if err != nil {
			t.Fatal(err)
		}
		want := TokenResponse{Account: "work", TokenType: "Bearer", AccessToken: secretToken,
			Authorization: "Bearer " + secretToken, ExpiresAt: fixedExpiry, ExpiresIn: 300,
			Scope: "openid files", Server: "https://cloud.example"}
		if !reflect.DeepEqual(tok, want) {
			t.Errorf("got %+v, want %+v", tok, want)
		}
		p := ts.b.LastPeer()
		if p.UID != os.Getuid() || p.PID != os.Getpid() {
			t.Errorf("backend saw peer %+v, want uid %d pid %d", p, os.Getuid(), os.Getpid())
		}
		exe, _ := os.Executable()
		if p.Exe != exe {
			t.Errorf("got peer exe %q, want %q", p.Exe, exe)
		}
	})
	t.Run("exchange", func(t *testing.T) {
		tok, err := c.Exchange(ctx, ExchangeRequest{SubjectToken: subjectSecret, ActorToken: subjectSecret, ClientHint: "mcp", Audience: "nextcloud"})
		if err != nil {
			t.Fatal(err)
		}
		if tok.IssuedTokenType != "urn:ietf:params:oauth:token-type:access_token" || tok.AccessToken != secretToken {
			t.Errorf("got %+v, want an access token with issued_token_type", tok)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		r, err := c.Revoke(ctx, RevokeRequest{Account: "work"})
		if err != nil {
			t.Fatal(err)
		}
		want := RevokeResponse{Account: "work", Where: "idp", ServerRevoked: true, SecretDeleted: true, PurgedTokens: 2}
		if r != want {
			t.Errorf("got %+v, want %+v", r, want)
		}
	})
	t.Run("login", func(t *testing.T) {
		var got []string
		final, err := c.Login(ctx, LoginRequest{Account: "work"}, func(ev LoginEvent) { got = append(got, ev.Type) })
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"method", "open_url", "waiting"}; !reflect.DeepEqual(got, want) {
			t.Errorf("got events %q, want %q", got, want)
		}
		if final.Type != "done" || final.State != "signed-in" || final.User != "alice" || final.Account != "work" {
			t.Errorf("got final %+v, want done signed-in alice for work", final)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := c.Token(ctx, TokenRequest{Account: "nope"})
		var we *Error
		if !errors.As(err, &we) {
			t.Fatalf("got %v, want *Error", err)
		}
		if we.Code != CodeUnknownAccount || we.Status != 404 || we.Account != "nope" {
			t.Errorf("got %+v, want unknown_account 404 for nope", we)
		}
		_, err = c.Login(ctx, LoginRequest{Account: "nope"}, nil)
		if !errors.As(err, &we) || we.Code != CodeUnknownAccount || we.Status != 404 {
			t.Errorf("login: got %v, want unknown_account 404", err)
		}
	})
}

func TestClientNotRunning(t *testing.T) {
	dir := shortDir(t)
	cases := []struct {
		name string
		path string
	}{
		{"missing socket", dir + "/none.sock"},
		{"stale socket", testutil.StaleSocket(t, dir+"/stale.sock")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := NewClient(tc.path).Status(ctx)
			if !errors.Is(err, ErrNotRunning) {
				t.Errorf("got %v, want ErrNotRunning", err)
			}
			if _, err := Dial(ctx, tc.path); !errors.Is(err, ErrNotRunning) {
				t.Errorf("Dial: got %v, want ErrNotRunning", err)
			}
		})
	}
}
