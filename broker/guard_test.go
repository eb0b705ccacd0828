package broker

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
)

// panickyStore panics on its first Get calls, as a buggy keychain backend
// would, then behaves.
type panickyStore struct {
	*memStore
	mu   sync.Mutex // guards left
	left int
}

func (s *panickyStore) Get(account string) (Secret, error) {
	s.mu.Lock()
	p := s.left > 0
	if p {
		s.left--
	}
	s.mu.Unlock()
	if p {
		panic("store bug holding refresh-token-Zk3c9")
	}
	return s.memStore.Get(account)
}

// A panic in the broker's background loop (here: loading a secret at
// start) is logged without its value and the chain keeps serving; before
// the guard it killed the whole process.
func TestBackgroundPanicKeepsServing(t *testing.T) {
	it := newIntegration(t, idptest.Options{}, idptest.PublicClientID, nil)
	store := &panickyStore{memStore: it.store, left: 1}
	var logs testutil.SyncBuffer
	b := New(Options{Store: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := b.SetAccount(it.b.get("work").cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "recovered from a panic") {
		if time.Now().After(deadline) {
			t.Fatalf("no recovered panic logged; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	if _, err := b.Token(tctx, TokenRequest{Account: "work"}); err != nil {
		t.Fatalf("token after a recovered panic: got %v, want a token", err)
	}
	if out := logs.String(); strings.Contains(out, "Zk3c9") || !strings.Contains(out, "in=keep-alive") {
		t.Errorf("log: got %q, want the keep-alive panic logged without its value", out)
	}
}
