//go:build freebsd

package usersock

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred returns the kernel's view of the process on the other end of c
// via LOCAL_PEERCRED. x/sys exposes no pid in FreeBSD's xucred, so PID is 0.
func peerCred(c net.Conn) (Peer, error) {
	var xu *unix.Xucred
	var credErr error
	err := rawControl(c, func(fd uintptr) {
		xu, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return Peer{UID: int(xu.Uid)}, nil
}
