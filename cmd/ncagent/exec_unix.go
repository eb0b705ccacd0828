//go:build unix

package main

import "syscall"

// execCommand replaces this process with the command, so that signals and
// the exit code pass through untouched. It returns only on failure.
func execCommand(e *env, path string, argv, environ []string) int {
	err := syscall.Exec(path, argv, environ)
	errorf(e, "exec %s: %v", argv[0], err)
	return 126
}
