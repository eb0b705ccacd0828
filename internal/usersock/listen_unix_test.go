//go:build unix

package usersock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/testutil"
)

var shortDir = testutil.ShortDir

// serveOne accepts one connection on ln, checks its peer as a server must
// and answers "ok\n"; the channel gets the outcome.
func serveOne(ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		p, err := PeerCred(c)
		if err == nil {
			err = CheckSelf(p)
		}
		if err == nil {
			_, err = c.Write([]byte("ok\n"))
		}
		done <- err
	}()
	return done
}

// roundTrip dials path with Dial and reads the server's "ok\n".
func roundTrip(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if line != "ok\n" {
		return fmt.Errorf("got %q, want %q", line, "ok\n")
	}
	return nil
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Ino)
}

func TestSocketPath(t *testing.T) {
	uid := strconv.Itoa(os.Getuid())
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"override", map[string]string{EnvSocket: "/run/x/a.sock", "XDG_RUNTIME_DIR": "/run/user/1"}, "/run/x/a.sock"},
		{"xdg", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, "/run/user/1000/ncagent/agent.sock"},
		{"relative xdg ignored", map[string]string{"XDG_RUNTIME_DIR": "run"}, "/tmp/ncagent-" + uid + "/agent.sock"},
		{"no xdg", map[string]string{}, "/tmp/ncagent-" + uid + "/agent.sock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := socketPath(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListenModes(t *testing.T) {
	// A permissive umask must not widen the socket or its directory.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(shortDir(t), "ncagent", "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		path string
		want fs.FileMode
	}{{filepath.Dir(path), 0o700}, {path, 0o600}} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s: got mode %04o, want %04o", c.path, got, c.want)
		}
	}
	ln.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after Close: got %v, want removed", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestListenRefusesUnsafeDir(t *testing.T) {
	cases := []struct {
		name  string
		root  bool
		setup func(t *testing.T, base string) string // returns the socket dir
		want  error
	}{
		{"symlink", false, func(t *testing.T, base string) string {
			real := filepath.Join(base, "real")
			os.Mkdir(real, 0o700)
			link := filepath.Join(base, "link")
			if err := os.Symlink(real, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, ErrSocketDirSymlink},
		{"other owner", true, func(t *testing.T, base string) string {
			d := filepath.Join(base, "theirs")
			os.Mkdir(d, 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}, ErrSocketDirOwner},
		{"mode 0755", false, func(t *testing.T, base string) string {
			d := filepath.Join(base, "open")
			os.Mkdir(d, 0o700)
			os.Chmod(d, 0o755)
			return d
		}, ErrSocketDirMode},
		{"mode 0710", false, func(t *testing.T, base string) string {
			d := filepath.Join(base, "group")
			os.Mkdir(d, 0o700)
			os.Chmod(d, 0o710)
			return d
		}, ErrSocketDirMode},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Getuid() != 0 {
				t.Skip("skipping: chown to another uid needs root")
			}
			dir := tc.setup(t, shortDir(t))
			path := filepath.Join(dir, "agent.sock")
			ln, err := Listen(path)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen in unsafe dir succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket created in refused dir: %v", err)
			}
		})
	}
}

func TestListenStaleSocket(t *testing.T) {
	dir := shortDir(t)
	path := testutil.StaleSocket(t, filepath.Join(dir, "agent.sock"))
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("stale socket not replaced by a live one: %v", err)
	}
	c.Close()
}

func TestListenLiveSocketUntouched(t *testing.T) {
	// A listener that is not ours (no lock file): only the dial tells.
	dir := shortDir(t)
	path := filepath.Join(dir, "agent.sock")
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before := inode(t, path)
	if ln, err := Listen(path); !errors.Is(err, ErrAlreadyRunning) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("got %v, want ErrAlreadyRunning", err)
	}
	if inode(t, path) != before {
		t.Errorf("live socket replaced")
	}
	go func() {
		if c, err := other.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the other listener no longer reachable: %v", err)
	}
	c.Close()
}

func TestListenNotASocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	os.WriteFile(path, []byte("keep me"), 0o600)
	if ln, err := Listen(path); !errors.Is(err, ErrNotSocket) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("got %v, want ErrNotSocket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("file changed: got %q", b)
	}
}

func TestListenActivatedEnv(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	rc, _ := ul.SyscallConn()
	var fd int
	rc.Control(func(f uintptr) { fd, err = syscall.Dup(int(f)) })
	if err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	cases := []struct {
		name    string
		env     map[string]string
		wantOK  bool
		wantErr bool
	}{
		{"not activated", map[string]string{}, false, false},
		{"other pid", map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}, false, false},
		{"bad count", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "0"}, false, true},
		{"activated", map[string]string{"LISTEN_PID": "4242", "LISTEN_FDS": "1"}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, ok, err := listenActivatedFD(env(tc.env), 4242, fd, false)
			if ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("got ok=%v err=%v, want ok=%v err=%v", ok, err, tc.wantOK, tc.wantErr)
			}
			if !ok {
				return
			}
			served := serveOne(ln)
			if err := roundTrip(path); err != nil {
				t.Errorf("through the activated listener: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("serving: %v", err)
			}
			if err := ln.Close(); err != nil {
				t.Error(err)
			}
			if _, err := os.Lstat(path); err != nil {
				t.Errorf("activated socket file removed by Close: %v (systemd owns it)", err)
			}
		})
	}
}
