//go:build unix

package ipc

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// sessionBackend serves exec sessions on top of fakeBackend.
type sessionBackend struct {
	fakeBackend
	mu     sync.Mutex // guards open
	open   map[string]Peer
	closed chan string
}

var _ SessionBackend = (*sessionBackend)(nil)

func (b *sessionBackend) OpenSession(ctx context.Context, p Peer, r SessionRequest) (SessionResponse, func(), error) {
	if r.Account == "nosuch" {
		return SessionResponse{}, nil, &Error{Code: CodeUnknownAccount, Account: r.Account, Message: "no account"}
	}
	b.mu.Lock()
	b.open["s1"] = p
	b.mu.Unlock()
	return SessionResponse{ID: "s1", Account: r.Account, Host: "http://127.0.0.1:1", Username: "alice", Password: "pw"}, func() {
		b.mu.Lock()
		delete(b.open, "s1")
		b.mu.Unlock()
		b.closed <- "s1"
	}, nil
}

func startSessionServer(t *testing.T, b Backend) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "ncagent", "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, ServerOptions{Logger: slog.New(slog.DiscardHandler), Socket: path, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	testutil.Serve(t, 10*time.Second, func(ctx context.Context) error { return srv.Run(ctx, ln) })
	return path
}

// TestSessionLifetime: a session lives past the server's read and write
// timeouts for as long as the client holds it, and ends at once when the
// client closes it.
func TestSessionLifetime(t *testing.T) {
	b := &sessionBackend{open: map[string]Peer{}, closed: make(chan string, 1)}
	cl := NewClient(startSessionServer(t, b))
	defer cl.Close()
	ctx := context.Background()
	s, err := cl.OpenSession(ctx, SessionRequest{Account: "work", Command: "mcp"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "s1" || s.Password != "pw" || s.Username != "alice" || s.Host == "" {
		t.Errorf("session: got %+v", s.SessionResponse)
	}
	time.Sleep(time.Second) // beyond ReadTimeout and WriteTimeout
	select {
	case <-s.Done():
		t.Fatal("session ended by the server's timeouts")
	case <-b.closed:
		t.Fatal("backend closed the session while the client holds it")
	default:
	}
	b.mu.Lock()
	if p := b.open["s1"]; len(b.open) != 1 || p.PID == 0 {
		t.Errorf("open sessions: got %+v, want s1 with the peer's pid", b.open)
	}
	b.mu.Unlock()
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-b.closed:
		if d := time.Since(start); d > time.Second {
			t.Errorf("session closed %v after the client closed it", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the backend never closed the session")
	}
	_, err = cl.OpenSession(ctx, SessionRequest{Account: "nosuch"})
	if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeUnknownAccount {
		t.Errorf("unknown account: got %v, want unknown_account", err)
	}
}

// TestSessionNotServed: a backend without sessions answers not_found.
func TestSessionNotServed(t *testing.T) {
	cl := NewClient(startSessionServer(t, &fakeBackend{}))
	defer cl.Close()
	_, err := cl.OpenSession(context.Background(), SessionRequest{})
	if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeNotFound {
		t.Errorf("got %v, want not_found", err)
	}
}
