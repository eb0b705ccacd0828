//go:build unix

package usersock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func socketPath(getenv func(string) string) (string, error) {
	if p := getenv(EnvSocket); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("socket path %s: %w", EnvSocket, err)
		}
		return abs, nil
	}
	if runtime.GOOS == "darwin" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("socket path: %w", err)
		}
		return filepath.Join(dir, "ncagent", "agent.sock"), nil
	}
	if x := getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "ncagent", "agent.sock"), nil
	}
	// A fixed /tmp rather than os.TempDir: the agent and its clients may run
	// with different TMPDIR values and must agree on the path.
	return filepath.Join("/tmp", "ncagent-"+strconv.Itoa(os.Getuid()), "agent.sock"), nil
}

// unixListener is a socket created by Listen. It holds an exclusive flock
// on <path>.lock for its lifetime, so two agents starting together cannot
// both decide the socket is stale.
type unixListener struct {
	*net.UnixListener
	lock      *os.File
	closeOnce sync.Once
	closeErr  error
}

func (l *unixListener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.UnixListener.Close() // unlinks the socket file
		l.lock.Close()
	})
	return l.closeErr
}

func listen(path string) (net.Listener, error) {
	if err := secureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := clearStale(path); err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	// The socket is created with 0777&^umask and then narrowed to 0600; in
	// between it is unreachable to others because its directory is 0700 and
	// ours (checked above).
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w: %w", ErrAlreadyRunning, err)
		}
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return &unixListener{UnixListener: ln, lock: lock}, nil
}

// secureDir makes sure dir exists as a real directory, owned by us, with no
// access for group or others. It creates it (0700) when missing but never
// repairs an existing one: a wrong owner or mode means someone else may
// have been there.
//
// Nothing here follows a symlink another user may swap in at dir (in a
// shared /tmp): Mkdir does not follow one (it fails with EEXIST), there
// is no Chmod (0700 through the umask can only lose bits, which the check
// refuses), and the checks are an fstat of the directory opened with
// O_NOFOLLOW, not of whatever the name points to a moment later.
func secureDir(dir string) error {
	// The parents are the user's own ($XDG_RUNTIME_DIR, the cache dir,
	// NCAGENT_SOCKET's) or /tmp.
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if fi, lerr := os.Lstat(dir); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("directory %s: %w", dir, ErrSocketDirSymlink)
		}
		if errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("directory %s: not a directory", dir)
		}
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("directory %s owned by uid %d: %w (another user created it: have it removed, or set XDG_RUNTIME_DIR or %s)",
			dir, st.Uid, ErrSocketDirOwner, EnvSocket)
	}
	if perm := fs.FileMode(st.Mode) & fs.ModePerm; perm != 0o700 {
		return fmt.Errorf("directory %s has mode %04o, want 0700: %w", dir, perm, ErrSocketDirMode)
	}
	return nil
}

// lockFile takes a non-blocking exclusive flock on path. A lock held by
// another process (or another Listen in this one) is ErrAlreadyRunning.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrAlreadyRunning)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// clearStale removes a socket left at path by an agent that is gone. It
// removes it only after a dial is refused; an answer is ErrAlreadyRunning,
// and any other outcome (a timeout, a full backlog) leaves it in place.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return ErrNotSocket
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return ErrAlreadyRunning
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return nil, err
	}
	return c, nil
}

// serverCred returns the identity of the process serving a dialed
// connection; for a Unix socket the peer credentials are symmetric.
func serverCred(c net.Conn) (Peer, error) { return peerCred(c) }

// isSelf reports whether p runs as our uid; unknown (negative) uids fail.
func isSelf(p Peer) error {
	if p.UID < 0 || p.UID != os.Getuid() {
		return fmt.Errorf("uid %d: %w", p.UID, ErrForeignPeer)
	}
	return nil
}

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// listenActivated implements ListenActivated with the environment, our pid
// and the first descriptor injectable for tests. The protocol is
// sd_listen_fds(3): LISTEN_PID must equal our pid, LISTEN_FDS counts the
// descriptors passed from fd 3 on.
func listenActivated(getenv func(string) string, pid int, unset bool) (net.Listener, bool, error) {
	return listenActivatedFD(getenv, pid, listenFDsStart, unset)
}

func listenActivatedFD(getenv func(string) string, pid, firstFD int, unset bool) (net.Listener, bool, error) {
	pidStr, fdsStr := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if pidStr == "" || fdsStr == "" {
		return nil, false, nil
	}
	if p, err := strconv.Atoi(pidStr); err != nil || p != pid {
		return nil, false, nil // meant for another process
	}
	if unset {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}
	n, err := strconv.Atoi(fdsStr)
	if err != nil || n < 1 {
		return nil, false, fmt.Errorf("socket activation: LISTEN_FDS=%q: want a positive count", fdsStr)
	}
	for fd := firstFD; fd < firstFD+n; fd++ {
		syscall.CloseOnExec(fd)
	}
	f := os.NewFile(uintptr(firstFD), "LISTEN_FD_"+strconv.Itoa(firstFD))
	ln, err := net.FileListener(f)
	f.Close() // FileListener holds its own duplicate
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: fd %d: %w", firstFD, err)
	}
	if _, ok := ln.(*net.UnixListener); !ok {
		ln.Close()
		return nil, false, fmt.Errorf("socket activation: fd %d is %s, want a unix stream socket", firstFD, ln.Addr().Network())
	}
	return ln, true, nil
}
