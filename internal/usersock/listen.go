package usersock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// Errors from Listen and Dial.
var (
	// ErrAlreadyRunning means another agent answers on the socket; Listen
	// left the socket untouched.
	ErrAlreadyRunning = errors.New("an agent is already running on this socket")
	// ErrNotRunning means no agent listens on the socket (no such socket,
	// or connection refused; pipe not found on Windows).
	ErrNotRunning = errors.New("agent not running")

	// ErrSocketDirSymlink: the socket directory is a symbolic link.
	ErrSocketDirSymlink = errors.New("socket directory is a symlink")
	// ErrSocketDirOwner: the socket directory belongs to another user.
	ErrSocketDirOwner = errors.New("socket directory is owned by another user")
	// ErrSocketDirMode: group or others have access to the socket directory.
	ErrSocketDirMode = errors.New("socket directory is accessible by group or others")
	// ErrNotSocket: the socket path exists and is not a socket; Listen does
	// not remove it.
	ErrNotSocket = errors.New("path exists and is not a socket")
)

// EnvSocket names the environment variable that overrides SocketPath.
const EnvSocket = "NCAGENT_SOCKET"

// SocketPath returns where the agent listens and clients dial, without
// creating anything. NCAGENT_SOCKET overrides the platform default:
//   - Linux and BSD: $XDG_RUNTIME_DIR/ncagent/agent.sock, or without
//     XDG_RUNTIME_DIR /tmp/ncagent-<uid>/agent.sock (a 0700 directory
//     Listen creates and checks);
//   - macOS: <os.UserCacheDir>/ncagent/agent.sock;
//   - Windows: \\.\pipe\ncagent-<user>.
func SocketPath() (string, error) {
	return socketPath(getenv)
}

// Listen listens on path and returns a listener whose Close removes the
// socket file it created. On Unix the directory is created 0700 when
// missing and refused when it is a symlink, owned by another uid or open
// to group or others (ErrSocketDirSymlink, ErrSocketDirOwner,
// ErrSocketDirMode); the socket is made 0600. An existing socket is
// removed only after a dial proves nobody answers; if an agent answers,
// Listen returns an error wrapping ErrAlreadyRunning. On Windows path is a
// named pipe whose DACL admits only the current user's SID.
//
// Listen does not check peers: the caller checks every accepted
// connection with PeerCred and CheckSelf before reading from it.
func Listen(path string) (net.Listener, error) {
	return listen(path)
}

// Dial connects to the agent at path and checks that the process serving
// it runs as the current user (ErrForeignPeer otherwise). When nobody
// listens the error wraps ErrNotRunning.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	c, err := dial(ctx, path)
	if err != nil {
		return nil, err
	}
	p, err := serverCred(c)
	if err == nil {
		err = isSelf(p)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: checking the server: %w", path, err)
	}
	return c, nil
}

// ListenActivated returns the listener passed by systemd socket activation
// (LISTEN_PID equal to our pid and LISTEN_FDS at least 1; the first passed
// descriptor is used) and true, or false when the agent was not socket
// activated. It unsets the LISTEN_* variables so children do not inherit
// them. The listener's Close leaves the socket file, which systemd owns;
// the caller checks the peers of its connections as for Listen. On
// Windows it always returns false.
func ListenActivated() (net.Listener, bool, error) {
	return listenActivated(getenv, os.Getpid(), true)
}

var getenv = os.Getenv
