package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/testutil"
)

// newFakeClock is the sign-in flows' clock in these tests: its sleep
// advances it at once and records how long it was asked to wait.
func newFakeClock() *testutil.Clock { return testutil.NewClock(time.Now()) }

// Secrets the fake device IdP hands out.
const (
	testDeviceCode   = "device-code-secret-Zq8v"
	testAccessToken  = "access-token-secret-Kd02"
	testRefreshToken = "refresh-token-secret-Pw71"
)

// deviceIdP is an RFC 8628 authorization server that answers token polls
// from a script: "pending", "slow_down", "denied", "expired", "ok",
// "ok-no-refresh", "ok-bad-aud". The last entry repeats.
type deviceIdP struct {
	t      *testing.T
	srv    *httptest.Server
	keys   testKeys
	script []string
	extra  map[string]any // added to the device authorization response

	mu         sync.Mutex // guards the fields below
	polls      int
	deviceForm url.Values
	tokenForms []url.Values
	authHdrs   []string
}

func newDeviceIdP(t *testing.T, script ...string) *deviceIdP {
	d := &deviceIdP{t: t, keys: signingKeys(t), script: script}
	d.srv = httptest.NewServer(d)
	t.Cleanup(d.srv.Close)
	return d
}

func (d *deviceIdP) metadata() broker.Metadata {
	return broker.Metadata{
		Issuer:                      d.srv.URL,
		TokenEndpoint:               d.srv.URL + "/token",
		DeviceAuthorizationEndpoint: d.srv.URL + "/device",
		JWKSURI:                     d.srv.URL + "/jwks",
	}
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "scripted " + code})
}

func (d *deviceIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/jwks":
		w.Header().Set("Content-Type", "application/json")
		w.Write(d.keys.jwksJSON(d.t))
		return
	case "/device":
		r.ParseForm()
		d.mu.Lock()
		d.deviceForm = r.PostForm
		d.authHdrs = append(d.authHdrs, r.Header.Get("Authorization"))
		d.mu.Unlock()
		resp := map[string]any{
			"device_code":               testDeviceCode,
			"user_code":                 "WDJB-MJHT",
			"verification_uri":          d.srv.URL + "/activate",
			"verification_uri_complete": d.srv.URL + "/activate?user_code=WDJB-MJHT",
			"expires_in":                600,
		}
		for k, v := range d.extra {
			resp[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
		return
	case "/token":
	default:
		http.NotFound(w, r)
		return
	}
	r.ParseForm()
	d.mu.Lock()
	step := d.script[min(d.polls, len(d.script)-1)]
	d.polls++
	d.tokenForms = append(d.tokenForms, r.PostForm)
	d.authHdrs = append(d.authHdrs, r.Header.Get("Authorization"))
	d.mu.Unlock()
	switch step {
	case "pending":
		oauthError(w, http.StatusBadRequest, "authorization_pending")
	case "slow_down":
		oauthError(w, http.StatusBadRequest, "slow_down")
	case "denied":
		oauthError(w, http.StatusBadRequest, "access_denied")
	case "expired":
		oauthError(w, http.StatusBadRequest, "expired_token")
	case "ok", "ok-no-refresh", "ok-bad-aud":
		aud := "ncagent"
		if step == "ok-bad-aud" {
			aud = "someone-else"
		}
		resp := map[string]any{
			"access_token":       testAccessToken,
			"token_type":         "bearer",
			"expires_in":         300,
			"refresh_expires_in": 1800,
			"scope":              "openid files offline_access",
			"id_token": d.keys.sign(d.t, "ES256", "ec1", jwt.MapClaims{
				"iss": d.srv.URL, "aud": aud, "sub": "u-42", "exp": time.Now().Add(time.Hour).Unix(),
				"preferred_username": "bob", "name": "Bob Builder",
			}),
		}
		if step != "ok-no-refresh" {
			resp["refresh_token"] = testRefreshToken
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	default:
		http.Error(w, "bad script", http.StatusInternalServerError)
	}
}

func deviceRequest(t *testing.T, d *deviceIdP, clock *testutil.Clock, log *eventLog) signInRequest {
	return signInRequest{
		Account:  "work",
		Method:   MethodDevice,
		Server:   d.srv.URL,
		Issuer:   d.srv.URL,
		ClientID: "ncagent",
		Scopes:   []string{"files"},
		Metadata: d.metadata(),
		HTTP:     testHTTPClient(t),
		Progress: log.progress,
		Now:      clock.Now,
		sleep:    clock.Sleep,
	}
}

func TestSignInDeviceSuccess(t *testing.T) {
	tests := []struct {
		name       string
		extra      map[string]any
		auth       broker.ClientAuth
		wantSleeps []time.Duration
		wantBasic  bool
	}{
		{name: "default interval, slow_down adds 5s", auth: broker.ClientAuthNone,
			wantSleeps: []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second}},
		{name: "server interval", extra: map[string]any{"interval": 2}, auth: broker.ClientAuthBasic, wantBasic: true,
			wantSleeps: []time.Duration{2 * time.Second, 2 * time.Second, 7 * time.Second, 7 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeviceIdP(t, "pending", "slow_down", "pending", "ok")
			d.extra = tt.extra
			clock := newFakeClock()
			start := clock.Now()
			log := newEventLog()
			r := deviceRequest(t, d, clock, log)
			r.ClientAuth = tt.auth
			if tt.auth == broker.ClientAuthBasic {
				r.ClientSecret = "client-secret-value"
			}
			res, err := signInDevice(context.Background(), r)
			if err != nil {
				t.Fatalf("signInDevice: %v", err)
			}
			if got := clock.Slept(); !slices.Equal(got, tt.wantSleeps) {
				t.Errorf("poll waits: got %v, want %v", got, tt.wantSleeps)
			}
			if res.Secret.Reveal() != testRefreshToken {
				t.Error("Secret: got another value, want the refresh token the IdP issued")
			}
			if res.Initial == nil || res.Initial.AccessToken.Reveal() != testAccessToken || res.Initial.TokenType != "Bearer" {
				t.Error("Initial: got another token, want the issued Bearer access token")
			} else if got, want := res.Initial.Expiry, clock.Now().Add(300*time.Second); !got.Equal(want) {
				t.Errorf("Initial.Expiry: got %s, want %s", got, want)
			}
			if got, want := res.RefreshExpiry, clock.Now().Add(1800*time.Second); !got.Equal(want) {
				t.Errorf("RefreshExpiry: got %s, want %s", got, want)
			}
			if res.Username != "bob" || res.DisplayName != "Bob Builder" || res.UserID != "u-42" || res.Kind != broker.KindOIDC {
				t.Errorf("result: got user %q %q %q kind %q, want bob, Bob Builder, u-42, oidc", res.Username, res.DisplayName, res.UserID, res.Kind)
			}
			if got, want := strings.Join(res.Scopes, " "), "openid files offline_access"; got != want {
				t.Errorf("Scopes: got %q, want %q", got, want)
			}

			d.mu.Lock()
			defer d.mu.Unlock()
			if got, want := d.deviceForm.Get("scope"), "openid profile email files offline_access"; got != want {
				t.Errorf("device request scope: got %q, want %q", got, want)
			}
			for i, f := range d.tokenForms {
				if got := f.Get("grant_type"); got != deviceCodeGrant {
					t.Errorf("poll %d grant_type: got %q, want %q", i, got, deviceCodeGrant)
				}
				if f.Get("device_code") != testDeviceCode {
					t.Errorf("poll %d: device_code is not the one issued", i)
				}
			}
			for i, h := range d.authHdrs {
				if gotBasic := strings.HasPrefix(h, "Basic "); gotBasic != tt.wantBasic {
					t.Errorf("request %d: got Basic auth %v, want %v", i, gotBasic, tt.wantBasic)
				}
			}
			if !tt.wantBasic && d.deviceForm.Get("client_id") != "ncagent" {
				t.Errorf("device request client_id: got %q, want %q", d.deviceForm.Get("client_id"), "ncagent")
			}

			evs := log.all()
			if len(evs) != 2 || evs[0].Type != "user_code" || evs[1].Type != "waiting" {
				t.Fatalf("events: got %q, want user_code, waiting", log.types())
			}
			ev := evs[0]
			if ev.UserCode != "WDJB-MJHT" || ev.URL != d.srv.URL+"/activate" || ev.Account != "work" || ev.Method != MethodDevice {
				t.Errorf("user_code event: got code %q url %q account %q method %q", ev.UserCode, ev.URL, ev.Account, ev.Method)
			}
			if !ev.ExpiresAt.Equal(start.Add(5 * time.Minute)) {
				t.Errorf("user_code ExpiresAt: got %s, want %s (the sign-in timeout, shorter than expires_in)", ev.ExpiresAt, start.Add(5*time.Minute))
			}
			if !strings.Contains(ev.Message, "/activate?user_code=WDJB-MJHT") {
				t.Errorf("user_code message: got %q, want it to name verification_uri_complete", ev.Message)
			}
		})
	}
}

func TestSignInDeviceFailures(t *testing.T) {
	tests := []struct {
		name      string
		script    []string
		extra     map[string]any
		timeout   time.Duration
		wantErr   error
		wantIdP   string
		wantPolls int // 0: not checked
	}{
		{name: "denied", script: []string{"pending", "denied"}, wantErr: ErrSignInDenied, wantIdP: "access_denied", wantPolls: 2},
		{name: "expired_token", script: []string{"pending", "expired"}, wantErr: ErrSignInTimeout, wantPolls: 2},
		// expires_in 30 s at the default 5 s interval: polls at 5…25 s, the
		// sixth wait reaches 30 s and ends the flow without polling.
		{name: "code expires locally", script: []string{"pending"}, extra: map[string]any{"expires_in": 30}, wantErr: ErrSignInTimeout, wantPolls: 5},
		{name: "sign-in timeout before expiry", script: []string{"pending"}, timeout: 20 * time.Second, wantErr: ErrSignInTimeout, wantPolls: 3},
		{name: "no refresh token", script: []string{"ok-no-refresh"}, wantErr: ErrNoRefreshToken},
		{name: "id token for another client", script: []string{"ok-bad-aud"}, wantErr: ErrIDToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeviceIdP(t, tt.script...)
			d.extra = tt.extra
			log := newEventLog()
			r := deviceRequest(t, d, newFakeClock(), log)
			r.Timeout = tt.timeout
			_, err := signInDevice(context.Background(), r)
			checkErr(t, err, tt.wantErr, tt.wantIdP)
			d.mu.Lock()
			polls := d.polls
			d.mu.Unlock()
			if tt.wantPolls != 0 && polls != tt.wantPolls {
				t.Errorf("polls: got %d, want %d", polls, tt.wantPolls)
			}
		})
	}
}

// TestSignInDeviceAuthorizationError: an error from the device
// authorization endpoint is an IdP error, before any event.
func TestSignInDeviceAuthorizationError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
	}))
	defer srv.Close()
	log := newEventLog()
	r := signInRequest{Account: "work", ClientID: "ncagent", HTTP: testHTTPClient(t), Progress: log.progress,
		Metadata: broker.Metadata{Issuer: srv.URL, TokenEndpoint: srv.URL + "/token", DeviceAuthorizationEndpoint: srv.URL + "/device"}}
	_, err := signInDevice(context.Background(), r)
	checkErr(t, err, nil, "invalid_client")
	if n := len(log.all()); n != 0 {
		t.Errorf("events: got %d, want none", n)
	}
	r.Metadata.DeviceAuthorizationEndpoint = ""
	if _, err := signInDevice(context.Background(), r); err == nil || !strings.Contains(err.Error(), "no device authorization endpoint") {
		t.Errorf("without endpoint: got %v, want an error naming the missing device authorization endpoint", err)
	}
}

// TestSignInDeviceCancel: cancelling the context ends polling.
func TestSignInDeviceCancel(t *testing.T) {
	d := newDeviceIdP(t, "pending")
	log := newEventLog()
	r := deviceRequest(t, d, newFakeClock(), log)
	ctx, cancel := context.WithCancel(context.Background())
	r.sleep = func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}
	_, err := signInDevice(ctx, r)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
