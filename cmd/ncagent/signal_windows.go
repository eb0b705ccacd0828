package main

import "os"

// signalReload: Windows has no SIGHUP; the agent polls its files.
func signalReload(p *os.Process) {}

// signalStop ends the agent. Windows cannot deliver a console interrupt to
// a detached process, so this is TerminateProcess; the pipe goes with it.
func signalStop(p *os.Process) error { return p.Kill() }
