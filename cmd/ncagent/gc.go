package main

import "runtime/debug"

// The garbage collector of ncagent run. The agent's live heap is small
// (about 3 MiB), so with the default GOGC=100 a burst of requests starts
// a collection every few hundred requests. GOGC=400 lets the heap grow
// to five times the live heap between collections: in TestCLIBench it
// took the agent's CPU time per request from 1.9 to 1.6 times the floor
// server's (BENCHMARKS.md, issue 13), at a peak RSS of 31 MiB instead of
// 19 under 16 clients. The 64 MiB soft limit keeps a larger live heap
// from growing five times over, and ipc's server hands the free memory
// back to the OS 2 s after a burst, so the idle agent does not keep the
// larger heap. GOGC or GOMEMLIMIT in the environment take precedence.
const (
	daemonGCPercent   = 400
	daemonMemoryLimit = 64 << 20
)

// tuneDaemonGC applies the settings above where the environment sets
// none.
func tuneDaemonGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(daemonMemoryLimit)
	}
}
