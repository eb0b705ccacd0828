package main

import (
	"log/slog"
	"runtime/debug"
)

// agentIdle is what ncagent run does once a burst of requests is over
// (ipc.ServerOptions.Idle): the heap's free memory goes back to the OS,
// and on Linux the pages of the executable the agent has mapped
// (releaseExecutable).
func agentIdle(log *slog.Logger) func() {
	return func() {
		debug.FreeOSMemory()
		kb, err := releaseExecutable()
		if err != nil {
			log.Debug("agent: idle: executable pages kept", "err", err)
			return
		}
		log.Debug("agent: idle: memory released", "executable_kb", kb)
	}
}
