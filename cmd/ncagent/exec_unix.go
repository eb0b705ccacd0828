//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// forwardedSignals are passed on to the child. A terminal's ^C reaches
// the child directly as well (same process group); forwarding it again is
// what aws-vault and most supervisors do, and programs treat a repeated
// SIGINT like one.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func signalOf(ee *exec.ExitError) (int, bool) {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return int(ws.Signal()), true
}

// execCommand replaces this process with the command (exec --direct), so
// that signals and the exit code pass through untouched. It returns only
// on failure.
func execCommand(e *env, path string, argv, environ []string) int {
	err := syscall.Exec(path, argv, environ)
	errorf(e, "exec %s: %v", argv[0], err)
	return 126
}
