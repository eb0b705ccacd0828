//go:build unix

package ipc

import (
	"net"
	"syscall"
	"testing"
)

// staleSocket leaves a socket file at path that nobody listens on.
func staleSocket(t testing.TB, path string) string {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return path
}

var syscallECONNRESET = syscall.ECONNRESET
