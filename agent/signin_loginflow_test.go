package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/testutil"
)

// Secrets the fake Nextcloud hands out.
const (
	testPollToken   = "poll-token-secret-Hn3k"
	testAppPassword = "app-password-secret-Vb9s"
)

// nextcloud is a Nextcloud server speaking Login Flow v2 as documented:
// POST /index.php/login/v2 starts a flow, the poll endpoint answers 404
// until access was granted (after pending polls), then 200 with the
// credentials once, and GET /ocs/v2.php/cloud/user checks them.
type nextcloud struct {
	srv        *httptest.Server
	pending    int // polls answered 404 before success; -1: never succeed
	verifyCode int // status of the verification call; 0: 200

	mu         sync.Mutex // guards the fields below
	userAgents []string
	polls      int
	badPolls   int // polls with a wrong token
	verifies   int
}

func newNextcloud(t *testing.T, pending int) *nextcloud {
	nc := &nextcloud{pending: pending}
	nc.srv = httptest.NewServer(nc)
	t.Cleanup(nc.srv.Close)
	return nc
}

func (nc *nextcloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/index.php/login/v2":
		nc.userAgents = append(nc.userAgents, r.Header.Get("User-Agent"))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"poll":  map[string]string{"token": testPollToken, "endpoint": nc.srv.URL + "/login/v2/poll"},
			"login": nc.srv.URL + "/login/v2/flow/abcdef",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/login/v2/poll":
		r.ParseForm()
		if r.PostForm.Get("token") != testPollToken {
			nc.badPolls++
			http.NotFound(w, r)
			return
		}
		nc.polls++
		if nc.pending < 0 || nc.polls <= nc.pending {
			http.NotFound(w, r)
			return
		}
		server := nc.srv.URL
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"server": server, "loginName": "alice@example.com", "appPassword": testAppPassword})
	case r.Method == http.MethodGet && r.URL.Path == "/ocs/v2.php/cloud/user":
		nc.verifies++
		user, pass, ok := r.BasicAuth()
		switch {
		case r.Header.Get("OCS-APIRequest") != "true":
			http.Error(w, "CSRF check failed", http.StatusPreconditionFailed)
		case r.URL.Query().Get("format") != "json":
			http.Error(w, "want format=json", http.StatusBadRequest)
		case !ok || user != "alice@example.com" || pass != testAppPassword || nc.verifyCode == http.StatusUnauthorized:
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"ocs": map[string]any{"meta": map[string]any{"status": "failure", "statuscode": 997}}})
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"ocs": map[string]any{
				"meta": map[string]any{"status": "ok", "statuscode": 200},
				"data": map[string]any{"id": "alice", "displayname": "Alice Liddell", "display-name": "Alice Liddell"},
			}})
		}
	default:
		http.NotFound(w, r)
	}
}

func loginFlowRequest(t *testing.T, nc *nextcloud, clock *testutil.Clock, log *eventLog) signInRequest {
	return signInRequest{
		Account:  "cloud",
		Method:   MethodAppPassword,
		Server:   nc.srv.URL + "/",
		HTTP:     testHTTPClient(t),
		Progress: log.progress,
		Now:      clock.Now,
		sleep:    clock.Sleep,
		hostname: func() (string, error) { return "laptop", nil },
	}
}

func TestSignInLoginFlowSuccess(t *testing.T) {
	nc := newNextcloud(t, 3)
	clock := newFakeClock()
	start := clock.Now()
	log := newEventLog()
	res, err := signInAppPassword(context.Background(), loginFlowRequest(t, nc, clock, log))
	if err != nil {
		t.Fatalf("signInAppPassword: %v", err)
	}
	if res.Kind != broker.KindAppPassword || res.Initial != nil {
		t.Errorf("Kind, Initial: got %q, %v, want app-password, nil", res.Kind, res.Initial)
	}
	if res.Secret.Reveal() != testAppPassword {
		t.Error("Secret: got another value, want the app password the server issued")
	}
	for _, c := range []struct{ name, got, want string }{
		{"Server", res.Server, nc.srv.URL},
		{"Username", res.Username, "alice@example.com"},
		{"UserID", res.UserID, "alice"},
		{"DisplayName", res.DisplayName, "Alice Liddell"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if len(nc.userAgents) != 1 || nc.userAgents[0] != "ncagent (laptop)" {
		t.Errorf("User-Agent of the start request: got %q, want %q", nc.userAgents, "ncagent (laptop)")
	}
	if nc.polls != 4 || nc.badPolls != 0 || nc.verifies != 1 {
		t.Errorf("polls, bad polls, verifications: got %d, %d, %d, want 4, 0, 1", nc.polls, nc.badPolls, nc.verifies)
	}
	for i, d := range clock.Slept() {
		if d != 2*time.Second {
			t.Errorf("wait %d: got %s, want 2s", i, d)
		}
	}
	evs := log.all()
	if len(evs) != 2 || evs[0].Type != "open_url" || evs[1].Type != "waiting" {
		t.Fatalf("events: got %q, want open_url, waiting", log.types())
	}
	if got, want := evs[0].URL, nc.srv.URL+"/login/v2/flow/abcdef"; got != want {
		t.Errorf("open_url URL: got %q, want %q", got, want)
	}
	if got, want := evs[1].ExpiresAt, start.Add(20*time.Minute); !got.Equal(want) {
		t.Errorf("waiting ExpiresAt: got %s, want %s (20 minutes)", got, want)
	}
}

func TestSignInLoginFlowFailures(t *testing.T) {
	tests := []struct {
		name       string
		pending    int
		verifyCode int
		timeout    time.Duration
		wantErr    error
		wantMsg    string
		wantPolls  int
	}{
		// The default 20-minute window at one poll per 2 s: 599 polls.
		{name: "flow expires", pending: -1, wantErr: ErrSignInTimeout, wantMsg: "run the login again", wantPolls: 599},
		{name: "shorter timeout", pending: -1, timeout: time.Minute, wantErr: ErrSignInTimeout, wantPolls: 29},
		{name: "401 on verification", pending: 0, verifyCode: http.StatusUnauthorized, wantMsg: "HTTP 401", wantPolls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := newNextcloud(t, tt.pending)
			nc.verifyCode = tt.verifyCode
			log := newEventLog()
			r := loginFlowRequest(t, nc, newFakeClock(), log)
			r.Timeout = tt.timeout
			res, err := signInAppPassword(context.Background(), r)
			if err == nil {
				t.Fatal("signInAppPassword: got success, want an error")
			}
			if res.Secret != "" {
				t.Error("result: got a secret with an error, want none")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error: got %q, want it to wrap %q", err, tt.wantErr)
			}
			if tt.wantErr == nil && errors.Is(err, ErrSignInTimeout) {
				t.Errorf("error: got %q, want no timeout", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantMsg)
			}
			nc.mu.Lock()
			defer nc.mu.Unlock()
			if nc.polls != tt.wantPolls {
				t.Errorf("polls: got %d, want %d", nc.polls, tt.wantPolls)
			}
		})
	}
}

func TestSignInLoginFlowNotNextcloud(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	log := newEventLog()
	r := signInRequest{Account: "cloud", Server: srv.URL, HTTP: testHTTPClient(t), Progress: log.progress}
	_, err := signInAppPassword(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "no Login Flow v2") {
		t.Errorf("got %v, want an error saying the server has no Login Flow v2", err)
	}
	r.Server = "http://cloud.example.com"
	if _, err := signInAppPassword(context.Background(), r); err == nil || !strings.Contains(err.Error(), "want an https URL") {
		t.Errorf("plain http server: got %v, want a refusal asking for https", err)
	}
}

func TestSignInLoginFlowServer(t *testing.T) {
	tests := []struct {
		asked, returned, want string
		wantErr               bool
	}{
		{"https://cloud.example.com", "https://cloud.example.com/", "https://cloud.example.com", false},
		{"https://cloud.example.com", "https://other.example.com/nc", "https://other.example.com/nc", false},
		// Behind a TLS proxy without overwriteprotocol: same host, keep https.
		{"https://cloud.example.com", "http://cloud.example.com/nc", "https://cloud.example.com/nc", false},
		{"https://cloud.example.com", "http://evil.example.com", "", true},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{"https://cloud.example.com", "javascript:alert(1)", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.returned, func(t *testing.T) {
			got, err := loginFlowServer(tt.asked, tt.returned)
			if (err != nil) != tt.wantErr {
				t.Fatalf("loginFlowServer(%q, %q): got error %v, want error %v", tt.asked, tt.returned, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("loginFlowServer(%q, %q): got %q, want %q", tt.asked, tt.returned, got, tt.want)
			}
		})
	}
}

// A Nextcloud that answers 500 is up and failing: the sign-in says so and
// is not "unavailable" (which the CLI reports as exit 5, try again later);
// 502, 503, 504 and 429 are.
func TestSignInLoginFlowServerFault(t *testing.T) {
	for _, tc := range []struct {
		status      int
		unavailable bool
	}{
		{http.StatusInternalServerError, false},
		{http.StatusNotImplemented, false},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusTooManyRequests, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			log := newEventLog()
			r := signInRequest{Account: "cloud", Server: srv.URL, HTTP: srv.Client(), Progress: log.progress}
			_, err := signInAppPassword(context.Background(), r)
			if err == nil {
				t.Fatal("got success, want an error")
			}
			if got := errors.Is(err, broker.ErrUnavailable); got != tc.unavailable {
				t.Errorf("error %q: wraps ErrUnavailable %v, want %v", err, got, tc.unavailable)
			}
			if want := fmt.Sprintf("HTTP %d", tc.status); !strings.Contains(err.Error(), want) {
				t.Errorf("error: got %q, want it to name %q", err, want)
			}
			if !tc.unavailable && !strings.Contains(err.Error(), "not an outage") {
				t.Errorf("error: got %q, want it to say the server itself failed", err)
			}
		})
	}
}
