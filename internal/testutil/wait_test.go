package testutil

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var n atomic.Int32
	if !Eventually(time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Error("a condition true on the third poll: got false")
	}
	if Eventually(20*time.Millisecond, func() bool { return false }) {
		t.Error("a condition never true: got true")
	}
}

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 5*time.Second, "the third poll", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("polls: got %d, want 3", got)
	}

	r := &recorder{TB: t}
	returned := false
	start := time.Now()
	r.do(func() {
		WaitFor(r, 50*time.Millisecond, "nothing", func() bool { return false })
		returned = true
	})
	if returned {
		t.Error("a condition never true: WaitFor returned, want it to end the test")
	}
	if got, want := r.failures(), []string{"timed out after 50ms waiting for: nothing"}; !slices.Equal(got, want) {
		t.Errorf("failures: got %q, want %q", got, want)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("gave up after %v, want at least 50ms", waited)
	}
}
