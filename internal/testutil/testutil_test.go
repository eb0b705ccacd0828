package testutil

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSyncBufferConcurrent(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab"))
			}
		})
	}
	wg.Wait()
	if got := b.String(); len(got) != 1600 || strings.Trim(got, "ab") != "" {
		t.Errorf("got %d bytes, want 1600 of the writes", len(got))
	}
}

func TestShortDir(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = ShortDir(t)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("got %v, %v; want a 0700 directory", fi, err)
		}
		if len(dir) > 64 {
			t.Errorf("path %q is %d bytes, want short", dir, len(dir))
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after cleanup: got %v, want the directory removed", err)
	}
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	if !Eventually(time.Second, func() bool { return n.Add(1) >= 3 }) {
		t.Error("a condition true on the third poll: got false")
	}
	if Eventually(20*time.Millisecond, func() bool { return false }) {
		t.Error("a condition never true: got true")
	}
}
