//go:build !unix

package agent

// harden has nothing to do: Windows writes no core file, and other users
// cannot open the process without the debug privilege.
func harden() error { return nil }
