//go:build !linux

package main

// releaseExecutable does nothing outside Linux.
func releaseExecutable() (int, error) { return 0, nil }
