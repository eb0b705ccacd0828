//go:build windows

package main

import (
	"errors"
	"os"
	"os/exec"
)

// execCommand runs the command and returns its exit code.
func execCommand(e *env, path string, argv, environ []string) int {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = environ
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		errorf(e, "exec %s: %v", argv[0], err)
		return 126
	}
	return 0
}
