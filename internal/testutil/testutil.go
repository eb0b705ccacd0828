// Package testutil holds the helpers the tests of several packages share.
// Only _test.go files import it.
package testutil

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a log sink safe for concurrent writers; String returns
// what was written so far.
type SyncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ShortDir returns a fresh 0700 directory, removed at cleanup, with a path
// short enough for a Unix socket's sun_path (t.TempDir can exceed its 108
// bytes).
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

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
