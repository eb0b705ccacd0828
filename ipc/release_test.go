//go:build unix

package ipc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// TestIdleRelease: once requests stop for releaseAfter, the server hands
// free memory back once, not again while idle, and once more after the
// next burst.
func TestIdleRelease(t *testing.T) {
	var released atomic.Int32
	ts := startServer(t, nil, ServerOptions{}, func(s *Server) {
		s.releaseAfter = 50 * time.Millisecond
		s.release = func() { released.Add(1) }
	})
	c := NewClient(ts.path)
	defer c.Close()
	burst := func() {
		for range 3 {
			if _, err := c.Token(context.Background(), TokenRequest{Account: "work"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := released.Load(); got != 0 {
		t.Fatalf("released %d times before any request, want 0", got)
	}
	burst()
	if !testutil.Eventually(10*time.Second, func() bool { return released.Load() == 1 }) {
		t.Fatalf("released %d times after a burst and idle, want 1", released.Load())
	}
	time.Sleep(300 * time.Millisecond) // six periods, idle
	if got := released.Load(); got != 1 {
		t.Fatalf("released %d times while idle, want 1 (once per burst)", got)
	}
	burst()
	if !testutil.Eventually(10*time.Second, func() bool { return released.Load() == 2 }) {
		t.Fatalf("released %d times after a second burst, want 2", released.Load())
	}
}
