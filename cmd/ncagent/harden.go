package main

import (
	"log/slog"

	"github.com/ncagent/ncagent/agent"
)

// hardenAgent applies agent.Harden to the agent process before it reads
// any secret; a failure is logged, not fatal (a container may forbid
// setrlimit).
func hardenAgent(log *slog.Logger) {
	if err := agent.Harden(); err != nil {
		log.Warn("could not keep other processes out of the agent's memory", "err", err)
	}
}
