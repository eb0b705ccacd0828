package usersock

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Peer identifies the process on the other end of a connection, as the
// kernel reported it.
type Peer struct {
	UID  int    // -1 on Windows
	PID  int    // 0 when unknown
	Exe  string // executable path, when it could be read
	User string // Windows SID
}

// ErrPeerCredUnsupported is returned where the platform offers no way to
// learn a socket peer's identity. Connections are refused there: unknown
// credentials are a refusal.
var ErrPeerCredUnsupported = errors.New("peer credentials not supported on this platform")

// ErrForeignPeer means the process on the other end of a connection runs as
// another user. The server refuses such clients; the client refuses such
// servers (a socket planted by someone else).
var ErrForeignPeer = errors.New("peer runs as another user")

// PeerCred returns who is at the other end of c, a connection accepted
// from a listener of Listen or ListenActivated: the kernel's credentials
// of the client (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and
// FreeBSD, the pipe client's process token on Windows). The executable is
// best effort, for logging only. An error means the peer is unknown, and
// an unknown peer must be refused; where the platform has no such call
// every connection fails with ErrPeerCredUnsupported.
func PeerCred(c net.Conn) (Peer, error) { return peerCred(c) }

// CheckSelf returns nil when p runs as the current user (the same uid;
// the same user SID on Windows) and an error otherwise, wrapping
// ErrForeignPeer when p is another user. An unknown uid (negative) or SID
// (empty) fails.
func CheckSelf(p Peer) error { return isSelf(p) }

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
