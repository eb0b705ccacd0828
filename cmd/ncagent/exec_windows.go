//go:build windows

package main

import (
	"os"
	"os/exec"
)

// forwardedSignals: Windows delivers console control events to the whole
// console, child included; there is nothing to forward.
var forwardedSignals = []os.Signal{os.Interrupt}

func signalOf(*exec.ExitError) (int, bool) { return 0, false }

// execCommand runs the command and returns its exit code (exec --direct).
func execCommand(e *env, path string, argv, environ []string) int {
	return runChild(e, path, argv, environ, nil)
}
