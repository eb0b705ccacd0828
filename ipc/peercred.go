package ipc

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrPeerCredUnsupported is returned where the platform offers no way to
// learn a socket peer's identity. Connections are refused there: unknown
// credentials are a refusal.
var ErrPeerCredUnsupported = errors.New("peer credentials not supported on this platform")

// ErrForeignPeer means the process on the other end of a connection runs as
// another user. The server refuses such clients; the client refuses such
// servers (a socket planted by someone else).
var ErrForeignPeer = errors.New("peer runs as another user")

// rawControl runs f with the file descriptor of c.
func rawControl(c net.Conn, f func(fd uintptr)) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("connection type %T: %w", c, ErrPeerCredUnsupported)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(f)
}
