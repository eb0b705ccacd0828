package broker

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseIdPError(t *testing.T) {
	form := url.Values{"refresh_token": {"rt-secret-value"}}
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		wantDesc string
	}{
		{"rfc 6749", 400, `{"error":"invalid_grant","error_description":"expired"}`, "invalid_grant", "expired"},
		{"not json", 502, `<html>bad gateway</html>`, "http_502", ""},
		{"echoes the token", 400, `{"error":"invalid_grant","error_description":"token rt-secret-value unknown"}`, "invalid_grant", "token " + redacted + " unknown"},
		{"control characters", 400, "{\"error\":\"x\\ny\",\"error_description\":\"a\\u001b[31mb\"}", "xy", "a[31mb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ie := parseIdPError("refresh", tt.status, []byte(tt.body), form)
			if ie.Code != tt.wantCode || ie.Description != tt.wantDesc {
				t.Errorf("got %q %q, want %q %q", ie.Code, ie.Description, tt.wantCode, tt.wantDesc)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q): got %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestTokenEndpointOverrideWithoutDiscovery(t *testing.T) {
	f := newFakeIdP(t, "rt-0")
	// The issuer's discovery host is unreachable (a proxy setup); the token
	// endpoint override is enough to refresh.
	tb := newTestBroker(t, f, func(a *Account) { a.Issuer, a.Endpoints.Token = "http://127.0.0.1:1/unreachable", f.URL+"/token" })
	if got := tok(t, tb.Broker); got.AccessToken == "" {
		t.Fatal("got no token")
	}
}

func TestTokenEndpoint404DropsDiscovery(t *testing.T) {
	d := newDiscoveryServer(t) // names d.URL+"/token", which answers 404
	b := New(Options{Store: newMemStore()})
	store := b.store.(*memStore)
	b.SetAccount(Account{Name: "work", Kind: KindOIDC, Issuer: d.URL, ClientID: "c"})
	store.set("work", "rt")
	_, err := b.Token(context.Background(), TokenRequest{Account: "work"})
	var ie *IdPError
	if !errors.As(err, &ie) || ie.StatusCode != http.StatusNotFound {
		t.Fatalf("got %v, want an HTTP 404 IdPError", err)
	}
	b.Token(context.Background(), TokenRequest{Account: "work"})
	if got := d.hits.Load(); got != 2 {
		t.Errorf("got %d discovery fetches, want 2 (the 404 dropped the document)", got)
	}
}

func FuzzDecodeTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_token":"r","scope":"openid files"}`,
		`{"access_token":"a","expires_in":"300","refresh_expires_in":1800}`,
		`{"access_token":"a","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"N_A"}`,
		`{"token_type":"bearer"}`, `{`, `null`, `[]`, `{"expires_in":-1,"access_token":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeTokenResponse("refresh", body)
		if err != nil {
			if r != nil {
				t.Fatal("got a response with an error")
			}
			if strings.Contains(err.Error(), `"access_token"`) {
				t.Fatal("the error quotes the body")
			}
			return
		}
		if r.AccessToken == "" || r.ExpiresIn < 0 {
			t.Fatalf("accepted a response without access_token or with negative expires_in")
		}
	})
}

func FuzzParseIdPError(f *testing.F) {
	for _, s := range []string{`{"error":"invalid_grant","error_description":"x"}`, `oops`, `{"error":5}`, ``} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		form := url.Values{"refresh_token": {"rt-fuzz-secret"}}
		ie := parseIdPError("refresh", status, body, form)
		if ie.Code == "" {
			t.Fatal("got an empty code")
		}
		if strings.Contains(ie.Error(), "rt-fuzz-secret") {
			t.Fatal("the error carries the refresh token")
		}
		for _, r := range ie.Code + ie.Description {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("got a control character %U", r)
			}
		}
	})
}
