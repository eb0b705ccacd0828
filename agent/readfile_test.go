//go:build unix

package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// unreadable returns files a config or CA path must never be read from:
// /dev/zero (endless), a FIFO (blocks), a directory, a file over 1 MiB.
func unreadable(t *testing.T) map[string]string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("no /dev/zero or FIFOs on Windows")
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<20+1); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"/dev/zero": "a device", fifo: "a FIFO", dir: "a directory", big: "larger than 1048576 bytes"}
}

// within fails t when f does not return within 5 s.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("blocked for 5s")
		return nil
	}
}

func TestReadBoundedRefuses(t *testing.T) {
	for path, want := range unreadable(t) {
		t.Run(path, func(t *testing.T) {
			err := within(t, func() error { _, _, err := LoadConfig(path); return err })
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadConfig: got %v, want an error naming %s and %q", err, path, want)
			}
			missing := filepath.Join(t.TempDir(), "missing.toml")
			err = within(t, func() error { _, _, err := LoadFiles(path, missing); return err })
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadFiles, config.toml: got %v, want an error naming %s and %q", err, path, want)
			}
			err = within(t, func() error { _, _, err := LoadFiles(missing, path); return err })
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadFiles, state file: got %v, want an error naming %s and %q", err, path, want)
			}
			// The reload watcher fingerprints both files every tick.
			within(t, func() error { filesStamp(path, missing); return nil })
			err = within(t, func() error { _, err := readCAFile(path); return err })
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("readCAFile: got %v, want an error saying %q", err, want)
			}
		})
	}
	if _, err := readBounded(filepath.Join(t.TempDir(), "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "ok")
	os.WriteFile(p, []byte("0123456789"), 0o600)
	if b, err := readBounded(p, 10); err != nil || string(b) != "0123456789" {
		t.Errorf("file at the limit: got %q, %v", b, err)
	}
}

// TestLoginCAFileUnreadable sends /v1/login with ca_file /dev/zero, a
// FIFO, …: each gets a clear invalid_request at once, and the agent keeps
// serving.
func TestLoginCAFileUnreadable(t *testing.T) {
	r := startLoginRig(t, loginRigOptions{})
	for path, want := range unreadable(t) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := r.client.Login(ctx, ipc.LoginRequest{Account: "dev", Server: r.idp.Issuer(), CAFile: path}, func(ipc.LoginEvent) {})
		cancel()
		var ie *ipc.Error
		if !errors.As(err, &ie) || ie.Code != ipc.CodeInvalidRequest || !strings.Contains(ie.Message, want) {
			t.Errorf("login with ca_file %s: got %v, want invalid_request saying %q", path, err, want)
		}
		if _, err := r.client.Status(context.Background()); err != nil {
			t.Fatalf("status after ca_file %s: %v", path, err)
		}
	}
}
