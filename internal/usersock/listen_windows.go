//go:build windows

package usersock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

func socketPath(getenv func(string) string) (string, error) {
	if p := getenv(EnvSocket); p != "" {
		return p, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("socket path: %w", err)
	}
	return `\\.\pipe\ncagent-` + pipeSafe(u.Username), nil
}

// pipeSafe keeps [A-Za-z0-9._-] of a user name ("DOMAIN\user") and maps the
// rest to '_'. A collision is harmless: clients check the server's SID.
func pipeSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
}

// selfSID is the user SID of our process token, as a string.
var selfSID = sync.OnceValues(func() (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("current user sid: %w", err)
	}
	return tu.User.Sid.String(), nil
})

// listen creates the named pipe with a protected DACL granting only our
// user SID (D:P(A;;GA;;;<SID>)). go-winio creates the first instance with
// FILE_CREATE, the FILE_FLAG_FIRST_PIPE_INSTANCE semantics: it fails when
// the pipe exists, and a dial then tells a running agent from a squatter.
func listen(path string) (net.Listener, error) {
	sid, err := selfSID()
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: "D:P(A;;GA;;;" + sid + ")",
		InputBufferSize:    64 << 10,
		OutputBufferSize:   64 << 10,
	})
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if c, derr := Dial(ctx, path); derr == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: %w", path, ErrAlreadyRunning)
		}
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return ln, nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	c, err := winio.DialPipeContext(ctx, path)
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w", ErrNotRunning, err)
		}
		return nil, err
	}
	return c, nil
}

// isSelf reports whether p runs as our user SID.
func isSelf(p Peer) error {
	sid, err := selfSID()
	if err != nil {
		return err
	}
	if p.User == "" || p.User != sid {
		return fmt.Errorf("sid %q: %w", p.User, ErrForeignPeer)
	}
	return nil
}

// listenActivated: there is no socket activation on Windows.
func listenActivated(func(string) string, int, bool) (net.Listener, bool, error) {
	return nil, false, nil
}
