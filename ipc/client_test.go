//go:build unix

package ipc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The client's behaviour: keep-alive, retry of a request the agent never
// answered on a closed idle connection, context, and the framings net/http
// may answer with.

// countConns makes ts's server count the connections it accepts.
func countConns(n *atomic.Int64) func(*Server) {
	return func(s *Server) {
		pc := s.peerCred
		s.peerCred = func(c net.Conn) (Peer, error) {
			n.Add(1)
			return pc(c)
		}
	}
}

func TestClientKeepAlive(t *testing.T) {
	var conns atomic.Int64
	ts := startServer(t, nil, ServerOptions{}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		tok, err := c.Token(ctx, TokenRequest{Account: "work"})
		if err != nil || tok.AccessToken != secretToken {
			t.Fatalf("token #%d: got an unexpected answer, err %v", i, err)
		}
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("status #%d: %v", i, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("connections for 10 sequential requests: got %d, want 1", got)
	}
}

func TestClientRetriesClosedIdleConn(t *testing.T) {
	var conns atomic.Int64
	ts := startServer(t, nil, ServerOptions{IdleTimeout: 50 * time.Millisecond}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatal(err)
	}
	// The server closes the idle connection the client keeps.
	closed := func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return ts.srv.ln.open() == 0
	}
	for deadline := time.Now().Add(10 * time.Second); !closed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not close the idle connection within 10s")
		}
	}
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatalf("token after the server closed the idle connection: got %v, want a token", err)
	}
	if got := conns.Load(); got != 2 {
		t.Errorf("connections: got %d, want 2", got)
	}
}

func TestClientAfterServerStopped(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatal(err)
	}
	ts.stop(t)
	_, err := c.Token(ctx, TokenRequest{})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("got %v, want ErrNotRunning", err)
	}
}

func TestClientContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	b := &fakeBackend{token: func(_ context.Context, _ Peer, r TokenRequest) (TokenResponse, error) {
		if r.Account == "slow" {
			<-release
		}
		return fakeToken(r.Account, r.Scopes)
	}}
	var conns atomic.Int64
	ts := startServer(t, b, ServerOptions{}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Token(ctx, TokenRequest{Account: "slow"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the deadline: got %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.Token(ctx, TokenRequest{Account: "slow"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}

	// A connection cut short is not reused: the next request gets a new one.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if tok, err := c.Token(ctx, TokenRequest{Account: "work"}); err != nil || tok.AccessToken != secretToken {
		t.Fatalf("token after cancelled requests: got err %v", err)
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("connections: got %d, want 3", got)
	}
}

// TestClientFraming serves canned answers in the framings net/http may
// use and checks that the client reads each the same, reusing the
// connection only when the answer allows it.
func TestClientFraming(t *testing.T) {
	tok, _ := fakeToken("work", Scopes{"openid"})
	doc, _ := json.Marshal(tok)
	big, _ := json.Marshal(StatusResponse{Version: strings.Repeat("v", 70<<10), Accounts: []AccountStatus{}})
	chunked := func(b []byte) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b) }
	cases := []struct {
		name    string
		answer  string
		reuse   bool
		wantErr string
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(doc)) + "\r\n\r\n" + string(doc), true, ""},
		{"no reason, odd case", "HTTP/1.1 200\r\ncontent-length:" + fmt.Sprint(len(doc)) + "\r\nX-A: b\r\n\r\n" + string(doc), true, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + fmt.Sprint(len(doc)) + "\r\n\r\n" + string(doc), false, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(doc), true, ""},
		{"until close", "HTTP/1.0 200 OK\r\n\r\n" + string(doc), false, ""},
		{"over 64 KiB", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + string(big), true, ""},
		{"error", "HTTP/1.1 409 Conflict\r\nContent-Length: 43\r\n\r\n{\"error\":\"needs_login\",\"message\":\"sign in\"}", true, "needs_login"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", false, "Content-Length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(shortDir(t), "s.sock")
			ln, err := Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Add(1)
					go func() {
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							req, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							io.Copy(io.Discard, req.Body)
							if _, err := io.WriteString(c, tc.answer); err != nil || strings.HasPrefix(tc.answer, "HTTP/1.0") {
								return
							}
						}
					}()
				}
			}()
			c := NewClient(path)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for range 2 {
				var err error
				if tc.name == "over 64 KiB" {
					var st StatusResponse
					st, err = c.Status(ctx)
					if err == nil && len(st.Version) != 70<<10 {
						t.Fatalf("status version: got %d bytes, want %d", len(st.Version), 70<<10)
					}
				} else {
					var got TokenResponse
					got, err = c.Token(ctx, TokenRequest{})
					if err == nil && !reflect.DeepEqual(got, tok) {
						t.Fatalf("got %+v, want %+v", got, tok)
					}
				}
				if tc.wantErr == "" && err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
			}
			want := int64(2)
			if tc.reuse {
				want = 1
			}
			if got := conns.Load(); got != want {
				t.Errorf("connections for 2 requests: got %d, want %d", got, want)
			}
		})
	}
}
