//go:build unix

package main

import (
	"os"
	"syscall"
)

// signalReload sends SIGHUP: the agent reloads its config.
func signalReload(p *os.Process) { p.Signal(syscall.SIGHUP) }

// signalStop sends SIGTERM: the agent stops gracefully.
func signalStop(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
