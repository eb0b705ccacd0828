package broker

import (
	"context"
	"encoding/json"
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
