package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

// testLogger returns the agent's logger at info writing to a file of its
// own, behind a sink flushing after delay, and the file's path.
func testLogger(t *testing.T, delay time.Duration) (string, *slog.Logger, *logSink) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	log, sink := newAgentLogger(f, slog.LevelInfo, delay)
	return path, log, sink
}

// readLog returns what the agent's log file holds.
func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLogSinkFlushDelay: an info record reaches the file by itself,
// after the flush delay.
func TestLogSinkFlushDelay(t *testing.T) {
	path, log, sink := testLogger(t, logFlushDelay)
	defer sink.Close()
	log.Info("ipc: token issued", "account", "work")
	if !testutil.Eventually(10*time.Second, func() bool { return strings.Contains(readLog(t, path), "token issued") }) {
		t.Fatalf("info record not written within 10s (flush delay %v)", logFlushDelay)
	}
}

// TestLogSinkWriteBehind: an info record is not written in Handle; a
// warning is in the file when Warn returns, after the info record before
// it; Close writes what is left, and records after Close are written
// through.
func TestLogSinkWriteBehind(t *testing.T) {
	path, log, sink := testLogger(t, time.Hour) // no flush by time here

	log.Info("ipc: token issued", "account", "work")
	if got := readLog(t, path); got != "" {
		t.Errorf("log right after an info record: got %q, want it still buffered", got)
	}

	log.Info("first")
	log.Warn("second")
	got := readLog(t, path)
	if i, j := strings.Index(got, "msg=first"), strings.Index(got, "msg=second"); i < 0 || j < i {
		t.Errorf("log after Warn returned: got %q, want the info record, then the warning", got)
	}
	log.Error("third")
	if !strings.Contains(readLog(t, path), "level=ERROR msg=third") {
		t.Errorf("log after Error returned: got %q, want the error", readLog(t, path))
	}
	log.Debug("not logged")

	log.Info("last buffered")
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readLog(t, path), "msg=\"last buffered\"") {
		t.Errorf("log after Close: got %q, want the buffered record", readLog(t, path))
	}
	log.Info("after close")
	if got := readLog(t, path); !strings.Contains(got, `msg="after close"`) || strings.Contains(got, "not logged") {
		t.Errorf("log: got %q, want the record after Close written through and no debug record", got)
	}
}

// TestLogSinkFullBufferWrites: a burst larger than the buffer is written
// by the writers themselves, nothing dropped or reordered, also with
// concurrent writers.
func TestLogSinkFullBufferWrites(t *testing.T) {
	path, log, sink := testLogger(t, time.Hour)
	const writers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				log.Info("burst", "w", w, "i", i)
			}
		})
	}
	wg.Wait()
	// Before Close: all but the last buffer's worth is in the file.
	if n := len(readLog(t, path)); n == 0 {
		t.Errorf("log after %d records: got nothing, want all but the last %d records", writers*each, logFlushMax)
	}
	sink.Close()
	got := readLog(t, path)
	for w := range writers {
		last := -1
		for line := range strings.Lines(got) {
			var gw, gi int
			if _, err := fmt.Sscanf(line[strings.Index(line, "w="):], "w=%d i=%d", &gw, &gi); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if gw != w {
				continue
			}
			if gi != last+1 {
				t.Fatalf("writer %d: got record %d after %d, want %d", w, gi, last, last+1)
			}
			last = gi
		}
		if last != each-1 {
			t.Errorf("writer %d: got records up to %d, want up to %d", w, last, each-1)
		}
	}
}

// mutableErr is an error whose text changes after it was logged.
type mutableErr struct{ text string }

func (e *mutableErr) Error() string { return e.text }

// TestLogSinkFormatsLaterOnlyPlainRecords: a held record keeps the time
// of its Handle call; a record holding an error is formatted before
// Handle returns (its text could change), after the records held before
// it.
func TestLogSinkFormatsLaterOnlyPlainRecords(t *testing.T) {
	path, log, sink := testLogger(t, time.Hour)
	defer sink.Close()

	before := time.Now().Truncate(time.Millisecond)
	log.Info("held", "n", 1, "at", time.Unix(0, 0).UTC(), "ok", true)
	time.Sleep(300 * time.Millisecond)
	if got := readLog(t, path); got != "" {
		t.Fatalf("log after a plain info record: got %q, want it held", got)
	}
	e := &mutableErr{"as it was"}
	log.Info("with error", "err", e)
	e.text = "changed"
	got := readLog(t, path)
	i, j := strings.Index(got, "msg=held"), strings.Index(got, `msg="with error" err="as it was"`)
	if i < 0 || j < i {
		t.Fatalf("log after an info record with an error: got %q, want the held record, then the error as it was", got)
	}
	stamp, _, _ := strings.Cut(strings.TrimPrefix(got, "time="), " ")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		t.Fatalf("held record's time %q: %v", stamp, err)
	}
	if at.Before(before) || at.After(before.Add(200*time.Millisecond)) {
		t.Errorf("held record's time: got %v, want the time of its Handle call (%v), not of its flush", at, before)
	}
}
