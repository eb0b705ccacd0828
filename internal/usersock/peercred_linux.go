package usersock

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// peerCred returns the kernel's view of the process on the other end of c
// (SO_PEERCRED: the credentials at connect time). The executable is read
// from /proc/<pid>/exe, best effort, for logging only.
func peerCred(c net.Conn) (Peer, error) {
	var cred *unix.Ucred
	var credErr error
	err := rawControl(c, func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	p := Peer{UID: int(cred.Uid), PID: int(cred.Pid)}
	if p.PID > 0 {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(p.PID) + "/exe"); err == nil {
			p.Exe = exe
		}
	}
	return p, nil
}
