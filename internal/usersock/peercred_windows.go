package usersock

import (
	"fmt"
	"net"

	"golang.org/x/sys/windows"
)

// pipeHandle returns the handle of a go-winio pipe connection.
func pipeHandle(c net.Conn) (windows.Handle, error) {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return 0, fmt.Errorf("connection type %T: %w", c, ErrPeerCredUnsupported)
	}
	return windows.Handle(f.Fd()), nil
}

// peerCred identifies the client of a pipe connection: its pid from
// GetNamedPipeClientProcessId, then the user SID of that process's token.
// UID is -1 on Windows; isSelf compares User to our SID.
func peerCred(c net.Conn) (Peer, error) {
	h, err := pipeHandle(c)
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var pid uint32
	if err := windows.GetNamedPipeClientProcessId(h, &pid); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: client pid: %w", err)
	}
	return processPeer(pid)
}

// serverCred identifies the server of a dialed pipe connection.
func serverCred(c net.Conn) (Peer, error) {
	h, err := pipeHandle(c)
	if err != nil {
		return Peer{}, fmt.Errorf("server credentials: %w", err)
	}
	var pid uint32
	if err := windows.GetNamedPipeServerProcessId(h, &pid); err != nil {
		return Peer{}, fmt.Errorf("server credentials: server pid: %w", err)
	}
	return processPeer(pid)
}

// processPeer reads the user SID and image path of pid. A process we may
// not query (another user's) is an error, hence a refusal.
func processPeer(pid uint32) (Peer, error) {
	ph, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: open process %d: %w", pid, err)
	}
	defer windows.CloseHandle(ph)
	var tok windows.Token
	if err := windows.OpenProcessToken(ph, windows.TOKEN_QUERY, &tok); err != nil {
		return Peer{}, fmt.Errorf("peer credentials: token of process %d: %w", pid, err)
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: user of process %d: %w", pid, err)
	}
	p := Peer{UID: -1, PID: int(pid), User: tu.User.Sid.String()}
	buf := make([]uint16, 1024)
	n := uint32(len(buf))
	if windows.QueryFullProcessImageName(ph, 0, &buf[0], &n) == nil {
		p.Exe = windows.UTF16ToString(buf[:n])
	}
	return p, nil
}
