//go:build unix && !linux && !darwin && !freebsd

package usersock

import (
	"fmt"
	"net"
)

// peerCred fails closed where golang.org/x/sys offers no peer credential
// call (OpenBSD, NetBSD, Solaris, AIX...): every connection is refused.
func peerCred(net.Conn) (Peer, error) {
	return Peer{}, fmt.Errorf("peer credentials: %w", ErrPeerCredUnsupported)
}
