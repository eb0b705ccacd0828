package agent

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/ipc"
)

// TestPlanSignIn: what a sign-in will be, from the request and the
// account's config alone.
func TestPlanSignIn(t *testing.T) {
	oidcOld := &AccountConfig{Kind: "oidc", Server: "https://cloud.example", Issuer: "https://id.example", ClientID: "ncagent",
		Scopes: []string{"files"}, User: "alice", RedirectHost: "127.0.0.1"}
	appOld := &AccountConfig{Kind: "app-password", Server: "https://cloud.example", User: "alice"}
	tests := []struct {
		name       string
		req        ipc.LoginRequest
		old        *AccountConfig
		wantMethod string // "": left to discovery
		want       AccountConfig
		wantStore  bool
		wantErr    string // in the invalid_request message
	}{
		{name: "new account without server", req: ipc.LoginRequest{Method: MethodBrowser, ClientID: "c"},
			wantErr: "account work is new: give its server"},
		{name: "new account, bare server: discovery decides", req: ipc.LoginRequest{Server: "https://cloud.example"},
			want: AccountConfig{Server: "https://cloud.example"}},
		{name: "browser: issuer defaults to the server", req: ipc.LoginRequest{Method: MethodBrowser, Server: "https://cloud.example", ClientID: "c"},
			wantMethod: MethodBrowser, want: AccountConfig{Kind: "oidc", Server: "https://cloud.example", Issuer: "https://cloud.example", ClientID: "c"}},
		{name: "device without client id", req: ipc.LoginRequest{Method: MethodDevice, Server: "https://cloud.example"},
			wantErr: "has no OAuth client id for the device sign-in"},
		{name: "app-password: server defaults to the issuer", req: ipc.LoginRequest{Method: MethodAppPassword, Issuer: "https://cloud.example"},
			wantMethod: MethodAppPassword, want: AccountConfig{Kind: "app-password", Server: "https://cloud.example", Issuer: "https://cloud.example"}},
		{name: "unknown method", req: ipc.LoginRequest{Method: "carrier-pigeon", Server: "https://cloud.example"},
			wantErr: `unknown sign-in method "carrier-pigeon"`},
		{name: "old oidc account signs in again with the browser", old: oidcOld,
			wantMethod: MethodBrowser, want: *oidcOld},
		{name: "old oidc account, new server: discovery decides", old: oidcOld, req: ipc.LoginRequest{Server: "https://new.example"},
			want: func() AccountConfig { c := *oidcOld; c.Server = "https://new.example"; return c }()},
		{name: "old oidc account, device asked", old: oidcOld, req: ipc.LoginRequest{Method: MethodDevice, Scopes: ipc.Scopes{"files", "calendar"}},
			wantMethod: MethodDevice, want: func() AccountConfig { c := *oidcOld; c.Scopes = []string{"files", "calendar"}; return c }()},
		{name: "old app-password account keeps its method", old: appOld,
			wantMethod: MethodAppPassword, want: *appOld},
		{name: "old app-password account given a client id: discovery decides", old: appOld, req: ipc.LoginRequest{ClientID: "c"},
			want: func() AccountConfig { c := *appOld; c.ClientID = "c"; return c }()},
		{name: "a client secret makes the client confidential (basic)", req: ipc.LoginRequest{Method: MethodBrowser, Server: "https://cloud.example", ClientID: "c", ClientSecret: "s3cr3t-value"},
			wantMethod: MethodBrowser, wantStore: true,
			want: AccountConfig{Kind: "oidc", Server: "https://cloud.example", Issuer: "https://cloud.example", ClientID: "c", ClientAuth: "client_secret_basic"}},
		{name: "a client secret keeps a configured client_auth", old: &AccountConfig{Kind: "oidc", Server: "https://cloud.example", ClientID: "c", ClientAuth: "client_secret_post"},
			req: ipc.LoginRequest{ClientSecret: "s3cr3t-value"}, wantMethod: MethodBrowser, wantStore: true,
			want: AccountConfig{Kind: "oidc", Server: "https://cloud.example", Issuer: "https://cloud.example", ClientID: "c", ClientAuth: "client_secret_post"}},
		{name: "ca file from the request", req: ipc.LoginRequest{Method: MethodAppPassword, Server: "https://cloud.example", CAFile: "/etc/ca.pem"},
			wantMethod: MethodAppPassword, want: AccountConfig{Kind: "app-password", Server: "https://cloud.example", CAFile: "/etc/ca.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before AccountConfig
			if tt.old != nil {
				before = *tt.old
			}
			tt.req.Account = "work"
			p, err := planSignIn("work", tt.req, tt.old)
			if tt.old != nil && !equalConfig(*tt.old, before) {
				t.Errorf("old config: got %+v, want it unchanged %+v", *tt.old, before)
			}
			if tt.wantErr != "" {
				var ie *ipc.Error
				if !errors.As(err, &ie) || ie.Code != ipc.CodeInvalidRequest || ie.Account != "work" || !strings.Contains(ie.Message, tt.wantErr) {
					t.Fatalf("got %v, want an invalid_request of account work containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planSignIn: %v", err)
			}
			if p.method != tt.wantMethod {
				t.Errorf("method: got %q, want %q", p.method, tt.wantMethod)
			}
			if !equalConfig(*p.ac, tt.want) {
				t.Errorf("config: got %+v, want %+v", *p.ac, tt.want)
			}
			if p.storeSecret != tt.wantStore || p.clientSecret.Reveal() != tt.req.ClientSecret {
				t.Errorf("client secret: got store %v, want %v, and the request's secret kept", p.storeSecret, tt.wantStore)
			}
		})
	}
}

// TestPlanSignInWithMethod: the method discovery chose completes the plan
// as a given one would.
func TestPlanSignInWithMethod(t *testing.T) {
	for _, tt := range []struct {
		method, clientID, wantKind, wantErr string
	}{
		{method: MethodBrowser, clientID: "c", wantKind: "oidc"},
		{method: MethodBrowser, wantErr: "has no OAuth client id"},
		{method: MethodAppPassword, wantKind: "app-password"},
	} {
		t.Run(tt.method+"/"+tt.clientID, func(t *testing.T) {
			p, err := planSignIn("work", ipc.LoginRequest{Account: "work", Server: "https://cloud.example", ClientID: tt.clientID}, nil)
			if err != nil || p.method != "" {
				t.Fatalf("planSignIn: got method %q, err %v, want discovery to decide", p.method, err)
			}
			err = p.withMethod(tt.method)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("withMethod: got %v, want an error containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatalf("withMethod: %v", err)
			case tt.wantErr == "" && (p.method != tt.method || p.ac.Kind != tt.wantKind):
				t.Errorf("got method %q kind %q, want %q %q", p.method, p.ac.Kind, tt.method, tt.wantKind)
			}
		})
	}
}

func equalConfig(a, b AccountConfig) bool { return reflect.DeepEqual(a, b) }
