package agent

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
)

// TestSignInLoginFlowNoDowngrade is a Nextcloud on https whose user check
// answers 301 to http:// on the same host: the app password must not
// reach the plain listener, and the sign-in fails saying why.
func TestSignInLoginFlowNoDowngrade(t *testing.T) {
	var mu sync.Mutex
	var plainAuth []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		plainAuth = append(plainAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer plain.Close()

	nc := &nextcloud{}
	nc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ocs/v2.php/cloud/user" {
			http.Redirect(w, r, plain.URL+r.URL.RequestURI(), http.StatusMovedPermanently)
			return
		}
		nc.ServeHTTP(w, r)
	}))
	defer nc.srv.Close()
	// The server's CA, handed to the account as its ca_file would be.
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: nc.srv.Certificate().Raw})
	c, err := broker.NewHTTPClient(broker.HTTPOptions{CAPEM: ca, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	log := newEventLog()
	r := loginFlowRequest(t, nc, newFakeClock(), log)
	r.HTTP = c
	_, err = signInAppPassword(context.Background(), r)
	if !errors.Is(err, broker.ErrRedirect) || !strings.Contains(err.Error(), "https never continues over http") {
		t.Errorf("sign-in: got %v, want a refused redirect saying https never continues over http", err)
	}
	if err != nil && strings.Contains(err.Error(), testAppPassword) {
		t.Error("the error holds the app password")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range plainAuth { // never print a: it would be the app password
		if a != "" {
			t.Error("the plain http listener received an Authorization header")
		}
	}
}
