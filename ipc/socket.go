package ipc

import (
	"context"
	"fmt"
	"net"

	"github.com/ncagent/ncagent/internal/usersock"
)

// The local transport is package usersock, whose doc comments hold the
// contract and the security rules; these are its names in ipc, for ipc's
// callers. The functions put "ipc: " in front of usersock's errors; the
// error values are usersock's own, so errors.Is holds with either name.

// Errors from Listen and Dial.
var (
	// ErrAlreadyRunning means another agent answers on the socket; Listen
	// left the socket untouched.
	ErrAlreadyRunning = usersock.ErrAlreadyRunning
	// ErrNotRunning means no agent listens on the socket (no such socket,
	// or connection refused; pipe not found on Windows).
	ErrNotRunning = usersock.ErrNotRunning

	// ErrSocketDirSymlink: the socket directory is a symbolic link.
	ErrSocketDirSymlink = usersock.ErrSocketDirSymlink
	// ErrSocketDirOwner: the socket directory belongs to another user.
	ErrSocketDirOwner = usersock.ErrSocketDirOwner
	// ErrSocketDirMode: group or others have access to the socket directory.
	ErrSocketDirMode = usersock.ErrSocketDirMode
	// ErrNotSocket: the socket path exists and is not a socket; Listen does
	// not remove it.
	ErrNotSocket = usersock.ErrNotSocket

	// ErrPeerCredUnsupported: the platform offers no way to learn a socket
	// peer's identity, so every connection is refused.
	ErrPeerCredUnsupported = usersock.ErrPeerCredUnsupported
	// ErrForeignPeer means the process on the other end of a connection
	// runs as another user. The server refuses such clients; the client
	// refuses such servers (a socket planted by someone else).
	ErrForeignPeer = usersock.ErrForeignPeer
)

// EnvSocket names the environment variable that overrides SocketPath.
const EnvSocket = usersock.EnvSocket

// SocketPath is usersock.SocketPath: where the agent listens and clients
// dial, without creating anything. NCAGENT_SOCKET overrides the platform
// default ($XDG_RUNTIME_DIR/ncagent/agent.sock, or without it
// /tmp/ncagent-<uid>/agent.sock; <os.UserCacheDir>/ncagent/agent.sock on
// macOS; \\.\pipe\ncagent-<user> on Windows).
func SocketPath() (string, error) {
	p, err := usersock.SocketPath()
	if err != nil {
		return "", fmt.Errorf("ipc: %w", err)
	}
	return p, nil
}

// Listen is usersock.Listen: a listener on path whose Close removes the
// socket file, 0600 in a 0700 directory it creates or checks
// (ErrSocketDirSymlink, ErrSocketDirOwner, ErrSocketDirMode), a named pipe
// for the current user's SID alone on Windows. An existing socket is
// removed only after a dial proves nobody answers; if an agent answers,
// the error wraps ErrAlreadyRunning.
//
// Listen does not check peers; Server does, for every connection.
func Listen(path string) (net.Listener, error) {
	ln, err := usersock.Listen(path)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return ln, nil
}

// Dial is usersock.Dial: it connects to the agent at path and checks that
// the process serving it runs as the current user (ErrForeignPeer
// otherwise). When nobody listens the error wraps ErrNotRunning.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	c, err := usersock.Dial(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("ipc: %w", err)
	}
	return c, nil
}

// ListenActivated is usersock.ListenActivated: the listener passed by
// systemd socket activation and true, or false when the agent was not
// socket activated (always on Windows). The Server applies its peer
// checks to these connections as to any.
func ListenActivated() (net.Listener, bool, error) {
	ln, ok, err := usersock.ListenActivated()
	if err != nil {
		return nil, false, fmt.Errorf("ipc: %w", err)
	}
	return ln, ok, nil
}
