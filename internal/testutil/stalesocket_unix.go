//go:build unix

package testutil

import (
	"net"
	"testing"
)

// StaleSocket leaves a Unix socket file at path that nobody listens on,
// as an agent that was killed leaves it, and returns path.
func StaleSocket(t testing.TB, path string) string {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return path
}
