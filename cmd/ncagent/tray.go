//go:build linux || windows || (darwin && cgo)

package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/ui"
)

func init() {
	trayStarter = func(ctx context.Context, a *agent.Agent, log *slog.Logger) (func(), error) {
		opts := ui.TrayOptions{Logger: log, OpenURL: agent.OpenURL}
		if runtime.GOOS != "windows" { // no self-interrupt there; stop the agent from a terminal
			opts.Quit = func() {
				// The run verb's signal context stops the agent cleanly.
				if p, err := os.FindProcess(os.Getpid()); err == nil {
					if err := p.Signal(os.Interrupt); err != nil {
						log.Warn("tray: quit", "err", err)
					}
				}
			}
		}
		return ui.StartTray(ctx, a, opts)
	}
}
