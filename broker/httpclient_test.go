package broker

import (
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ncagent/ncagent/internal/buildinfo"
)

func TestNewHTTPClientRedirects(t *testing.T) {
	var targetHits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
		io.WriteString(w, "target")
	}))
	defer target.Close()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusFound
		if r.URL.Path == "/307" {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, target.URL+"/moved?code=abc", code)
	}))
	defer src.Close()

	c, err := NewHTTPClient(HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		method     string
		path       string
		wantErr    bool
		wantStatus int
	}{
		{"post 302 refused", http.MethodPost, "/302", true, http.StatusFound},
		{"post 307 refused", http.MethodPost, "/307", true, http.StatusTemporaryRedirect},
		{"get followed", http.MethodGet, "/302", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targetHits.Store(0)
			req, _ := http.NewRequest(tt.method, src.URL+tt.path, strings.NewReader("refresh_token=s3cret-value"))
			resp, err := c.Do(req)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				resp.Body.Close()
				if got := targetHits.Load(); got != 1 {
					t.Fatalf("got %d hits at the target, want 1", got)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("got no error, want a refused redirect")
			}
			var re *RedirectError
			if !errors.As(err, &re) || !errors.Is(err, ErrRedirect) {
				t.Fatalf("got %v, want a *RedirectError wrapping ErrRedirect", err)
			}
			if re.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", re.StatusCode, tt.wantStatus)
			}
			if want := target.URL + "/moved"; re.Location != want {
				t.Errorf("got location %q, want %q", re.Location, want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "code=abc") {
				t.Error("error message carries the request body or the redirect query")
			}
			if got := targetHits.Load(); got != 0 {
				t.Errorf("got %d hits at the redirect target, want 0", got)
			}
		})
	}
}

func TestNewHTTPClientUserAgentAndCA(t *testing.T) {
	var gotUA atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.Header.Get("User-Agent"))
	}))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	t.Run("unknown CA refused", func(t *testing.T) {
		c, err := NewHTTPClient(HTTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
			t.Fatal("got no error, want a certificate error")
		}
	})
	t.Run("extra CA trusted, user agent set", func(t *testing.T) {
		c, err := NewHTTPClient(HTTPOptions{CAPEM: caPEM})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := gotUA.Load(), buildinfo.UserAgent(); got != want {
			t.Errorf("got user agent %q, want %q", got, want)
		}
	})
	t.Run("bad CA bundle", func(t *testing.T) {
		if _, err := NewHTTPClient(HTTPOptions{CAPEM: []byte("not pem")}); err == nil {
			t.Fatal("got no error, want one for a bundle without certificates")
		}
	})
	t.Run("broker reuses one client per bundle", func(t *testing.T) {
		b := New(Options{Store: newMemStore()})
		c1, err := b.clientFor(caPEM)
		if err != nil {
			t.Fatal(err)
		}
		c2, _ := b.clientFor(append([]byte(nil), caPEM...))
		c3, _ := b.clientFor(nil)
		if c1 != c2 {
			t.Error("got two clients for one CA bundle, want one")
		}
		if c1 == c3 {
			t.Error("got one client for two CA bundles, want two")
		}
	})
}

func TestCheckEndpointURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://idp.example.com/token", true},
		{"http://127.0.0.1:8080/token", true},
		{"http://localhost/token", true},
		{"http://[::1]:9/token", true},
		{"http://idp.example.com/token", false},
		{"ftp://idp.example.com/token", false},
		{"https:///token", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckEndpointURL("token endpoint", tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestRedirectTargetRules: every redirect target is held to the endpoint
// rules; credentials never follow to another host or scheme.
func TestRedirectTargetRules(t *testing.T) {
	var mu sync.Mutex
	auth := map[string]string{} // server name → Authorization it received
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth[name] = r.Header.Get("Authorization") + "|" + r.Header.Get("Cookie")
			mu.Unlock()
			io.WriteString(w, "ok")
		}
	}
	other := httptest.NewTLSServer(record("other"))
	defer other.Close()
	plain := httptest.NewServer(record("plain"))
	defer plain.Close()
	src := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-plain":
			http.Redirect(w, r, plain.URL+"/x", http.StatusMovedPermanently)
		case "/to-other":
			// Same IP, another port: net/http would keep Authorization.
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/to-remote-http":
			http.Redirect(w, r, "http://cloud.example.com/x", http.StatusFound)
		case "/to-self":
			http.Redirect(w, r, "/done", http.StatusFound)
		default:
			io.WriteString(w, r.Header.Get("Authorization"))
		}
	}))
	defer src.Close()
	var ca []byte
	for _, s := range []*httptest.Server{src, other} {
		ca = append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})...)
	}
	c, err := NewHTTPClient(HTTPOptions{CAPEM: ca})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (string, error) {
		req, _ := http.NewRequest(http.MethodGet, src.URL+path, nil)
		req.SetBasicAuth("alice", "app-password")
		req.Header.Set("Cookie", "session=s")
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}

	if _, err := get("/to-plain"); !errors.Is(err, ErrRedirect) {
		t.Errorf("https → http on the same host: got %v, want ErrRedirect", err)
	}
	if _, err := get("/to-remote-http"); !errors.Is(err, ErrRedirect) {
		t.Errorf("→ http on a remote host: got %v, want ErrRedirect", err)
	}
	if _, err := get("/to-other"); err != nil {
		t.Errorf("https → https on another port: %v", err)
	}
	if body, err := get("/to-self"); err != nil || body == "" {
		t.Errorf("same origin: got %q, %v, want the credential kept", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := auth["plain"]; ok {
		t.Error("the plain http listener was reached")
	}
	if got := auth["other"]; got != "|" {
		t.Errorf("another host: got credentials %q, want none", got)
	}
}
