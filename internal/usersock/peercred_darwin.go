package usersock

import (
	"bytes"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred returns the kernel's view of the process on the other end of c:
// LOCAL_PEERCRED for the effective uid, LOCAL_PEERPID for the pid. The
// executable comes from the kern.procargs2 sysctl, best effort.
func peerCred(c net.Conn) (Peer, error) {
	var xu *unix.Xucred
	var credErr error
	pid := 0
	err := rawControl(c, func(fd uintptr) {
		xu, credErr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if credErr == nil {
			if n, err := unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
				pid = n
			}
		}
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return Peer{UID: int(xu.Uid), PID: pid, Exe: exePath(pid)}, nil
}

// exePath reads the executable path of pid from kern.procargs2, whose value
// starts with argc (int32) followed by the NUL-terminated exec path.
func exePath(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil || len(b) <= 4 {
		return ""
	}
	b = b[4:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
