//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// countingBackend answers token and status and counts every call, to
// check how many round trips a verb costs.
type countingBackend struct {
	mu    sync.Mutex // guards calls
	calls map[string]int
}

func (b *countingBackend) count(op string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[op]++
}

func (b *countingBackend) Calls() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for k, v := range b.calls {
		out[k] = v
	}
	return out
}

func (b *countingBackend) Status(context.Context) (ipc.StatusResponse, error) {
	b.count("status")
	return ipc.StatusResponse{Version: "test", PID: os.Getpid()}, nil
}

func (b *countingBackend) Token(_ context.Context, _ ipc.Peer, r ipc.TokenRequest) (ipc.TokenResponse, error) {
	b.count("token")
	if r.Account == "gone" {
		return ipc.TokenResponse{}, &ipc.Error{Code: ipc.CodeNeedsLogin, Account: r.Account, Message: `account "gone" needs sign-in: run ncagent login gone`}
	}
	return ipc.TokenResponse{Account: "work", TokenType: "Bearer", AccessToken: "tok-1", Authorization: "Bearer tok-1", Server: "https://cloud.example.com"}, nil
}

func (b *countingBackend) Exchange(context.Context, ipc.Peer, ipc.ExchangeRequest) (ipc.TokenResponse, error) {
	b.count("exchange")
	return ipc.TokenResponse{}, errors.New("not used")
}

func (b *countingBackend) Login(context.Context, ipc.Peer, ipc.LoginRequest, func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	b.count("login")
	return ipc.LoginEvent{}, errors.New("not used")
}

func (b *countingBackend) Revoke(context.Context, ipc.Peer, ipc.RevokeRequest) (ipc.RevokeResponse, error) {
	b.count("revoke")
	return ipc.RevokeResponse{}, errors.New("not used")
}

// TestOneRoundTrip checks that token, status and revoke cost one request each
// (no status check before the token), and that the error of the one
// request is what the CLI reports.
func TestOneRoundTrip(t *testing.T) {
	socket := filepath.Join(testutil.ShortDir(t), "agent.sock")
	ln, err := ipc.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBackend{calls: map[string]int{}}
	srv := ipc.NewServer(b, ipc.ServerOptions{Logger: slog.New(slog.DiscardHandler), Socket: socket})
	testutil.Serve(t, 10*time.Second, func(ctx context.Context) error { return srv.Run(ctx, ln) })

	cases := []struct {
		args       []string
		code       int
		want       map[string]int
		stdout     string
		stderrPart string
	}{
		{[]string{"token", "work", "--no-start"}, exitOK, map[string]int{"token": 1}, "tok-1\n", ""},
		{[]string{"token", "work"}, exitOK, map[string]int{"token": 1}, "tok-1\n", ""},
		{[]string{"token", "gone"}, exitNeedsLogin, map[string]int{"token": 1}, "", "run ncagent login gone"},
		{[]string{"status"}, exitOK, map[string]int{"status": 1}, "", ""},
		{[]string{"revoke", "work"}, exitError, map[string]int{"revoke": 1}, "", "internal error"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := b.Calls()
			var stdout, stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
				if k == "NCAGENT_SOCKET" {
					return socket
				}
				return ""
			}}
			tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer tcancel()
			if code := run(tctx, e, tc.args); code != tc.code {
				t.Fatalf("exit code: got %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			after := b.Calls()
			for _, op := range []string{"status", "token", "exchange", "login", "revoke"} {
				if got := after[op] - before[op]; got != tc.want[op] {
					t.Errorf("%s requests: got %d, want %d", op, got, tc.want[op])
				}
			}
			if tc.stdout != "" && stdout.String() != tc.stdout {
				t.Errorf("stdout: got %q, want %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderrPart) {
				t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), tc.stderrPart)
			}
		})
	}
}
