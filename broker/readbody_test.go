package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOversizedAnswerRefused: a discovery document that is valid JSON in
// its first megabyte but longer than the cap is refused with an error
// saying so, not cut and parsed.
func TestOversizedAnswerRefused(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, _ := json.Marshal(map[string]string{"issuer": srv.URL, "token_endpoint": srv.URL + "/token"})
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
		w.Write([]byte(strings.Repeat(" ", maxResponseBytes))) // trailing space: the cut document would parse
	}))
	defer srv.Close()
	b := New(Options{Store: newMemStore()})
	_, err := b.Discover(context.Background(), Account{Name: "w", Kind: KindOIDC, Issuer: srv.URL, ClientID: "c"})
	if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("Discover: got %v, want an error saying the answer is too large", err)
	}
}

// TestOversizedCodeExchangeAnswerRefused: a token endpoint answering the
// code exchange with more than 1 MiB is refused with that reason, not cut
// by x/oauth2 and reported as malformed, and not as the server being
// unavailable (retrying would not help).
func TestOversizedCodeExchangeAnswerRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":300,"pad":"`))
		w.Write([]byte(strings.Repeat("x", maxResponseBytes)))
		w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	acct := Account{Name: "w", Kind: KindOIDC, Issuer: srv.URL, ClientID: "c", Endpoints: Endpoints{Token: srv.URL + "/token"}}
	p, err := NewProvider(acct, Metadata{Issuer: srv.URL}, ProviderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ExchangeCode(context.Background(), "the-code", "http://127.0.0.1:1/callback", "the-verifier")
	if err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") || errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "malformed") {
		t.Errorf("ExchangeCode: got %v, want the answer refused as too large (not unavailable, not malformed)", err)
	}
}
