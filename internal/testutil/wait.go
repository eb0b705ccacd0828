package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every 5 ms for up to within and reports whether
// it became true: for effects that follow an event the test waits on (a
// log record written just after a connection is closed).
func Eventually(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// WaitFor polls cond every 20 ms until it is true, and fails t at once
// when within passes first; what names the condition in that failure.
// cond may be a costly check (a D-Bus call, a request over a socket), and
// may itself fail t.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
