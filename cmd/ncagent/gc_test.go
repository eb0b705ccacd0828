package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneDaemonGC: the daemon's GC settings apply where the environment
// sets none, and GOGC and GOMEMLIMIT win over them.
func TestTuneDaemonGC(t *testing.T) {
	pct, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(limit)
	})
	for _, tc := range []struct {
		name  string
		env   map[string]string
		pct   int
		limit int64
	}{
		{"defaults", nil, daemonGCPercent, daemonMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "50"}, 100, daemonMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, daemonGCPercent, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			tuneDaemonGC(func(k string) string { return tc.env[k] })
			if got := debug.SetGCPercent(100); got != tc.pct {
				t.Errorf("GC percent: got %d, want %d", got, tc.pct)
			}
			if got := debug.SetMemoryLimit(math.MaxInt64); got != tc.limit {
				t.Errorf("memory limit: got %d, want %d", got, tc.limit)
			}
		})
	}
}
