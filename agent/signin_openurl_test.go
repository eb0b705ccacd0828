package agent

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestOpenURLRejects(t *testing.T) {
	for _, u := range []string{
		"",
		"javascript:alert(1)",
		"file:///etc/passwd",
		"-oProxyCommand=touch /tmp/x",
		"//example.com/path",
		"http://",
		"https:example.com",
		"mailto:someone@example.com",
		"https://example.com/a b",
		"https://example.com/\nx",
	} {
		t.Run(u, func(t *testing.T) {
			if err := OpenURL(u); err == nil {
				t.Errorf("OpenURL(%q): got nil, want an error", u)
			}
		})
	}
}

// fakeOpener installs an xdg-open into PATH that records its arguments,
// one per line, and exits with code.
func fakeOpener(t *testing.T, code int) (argsFile string) {
	t.Helper()
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("xdg-open is the opener on Linux and the BSDs only")
	}
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '" + argsFile + "'; done\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return argsFile
}

func TestOpenURLRunsOpenerWithoutShell(t *testing.T) {
	argsFile := fakeOpener(t, 0)
	t.Setenv("DISPLAY", ":0")
	t.Setenv("WAYLAND_DISPLAY", "")
	runtimeDir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	// Shell metacharacters reach the trampoline verbatim.
	u := "https://cloud.example.com/login?a=1&b=$(touch%20pwned);c=`id`|x"
	start := time.Now()
	if err := OpenURL(u); err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	if d := time.Since(start); d > openerGrace+time.Second {
		t.Errorf("OpenURL took %s, want at most about %s", d, openerGrace)
	}
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatalf("opener did not run: %v", err)
	}
	arg := strings.TrimSuffix(string(b), "\n")
	dir := filepath.Join(runtimeDir, "ncagent", "open")
	if !strings.HasPrefix(arg, "file://"+dir+"/open-") || strings.Contains(arg, "cloud.example.com") {
		t.Fatalf("opener arguments: got %q, want one file:// URL under %s", arg, dir)
	}
	path := strings.TrimPrefix(arg, "file://")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("trampoline: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("trampoline mode: got %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("trampoline dir: got %v (%v), want mode 0700", di.Mode().Perm(), err)
	}
	page, _ := os.ReadFile(path)
	// html/template escapes & in the attribute; the browser decodes it.
	if !strings.Contains(string(page), "url=https://cloud.example.com/login?a=1&amp;b=$(touch%20pwned);c=`id`|x\"") {
		t.Errorf("trampoline does not forward to the URL:\n%s", page)
	}
	ForgetURL(u)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trampoline after ForgetURL: got %v, want it gone", err)
	}
}

func TestOpenerEnv(t *testing.T) {
	env := []string{"PATH=/usr/bin", "HOME=/home/alice", "DISPLAY=:0", "XDG_RUNTIME_DIR=/run/user/1000",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus", "LC_ALL=C.UTF-8",
		"NEXTCLOUD_PASSWORD=secret", "NEXTCLOUD_USERNAME=alice", "NEXTCLOUD_HOST=http://127.0.0.1:1",
		"NCAGENT_SESSION=s3cret", "AWS_SECRET_ACCESS_KEY=x", "GITHUB_TOKEN=y", "MOZ_ENABLE_WAYLAND=1",
		"NCAGENT_OPENER_ENV=WORK, NEXTCLOUD_PASSWORD MY_TOKEN", "WORK=/w", "MY_TOKEN=z", "OTHER=o"}
	got := strings.Join(openerEnv(env), " ")
	want := "PATH=/usr/bin HOME=/home/alice DISPLAY=:0 XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus LC_ALL=C.UTF-8 MOZ_ENABLE_WAYLAND=1 WORK=/w"
	if got != want {
		t.Errorf("openerEnv: got %q, want %q", got, want)
	}
}

func TestOpenURLNoBrowser(t *testing.T) {
	tests := []struct {
		name    string
		display string
		opener  bool
		code    int
		wantErr error // nil: any error
	}{
		{name: "no graphical session", display: "", opener: true, wantErr: ErrNoBrowser},
		{name: "no xdg-open", display: ":0", opener: false, wantErr: ErrNoBrowser},
		{name: "opener fails", display: ":0", opener: true, code: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opener {
				fakeOpener(t, tt.code)
			} else {
				if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
					t.Skip("xdg-open is the opener on Linux and the BSDs only")
				}
				t.Setenv("PATH", t.TempDir())
			}
			t.Setenv("DISPLAY", tt.display)
			t.Setenv("WAYLAND_DISPLAY", "")
			err := OpenURL("https://cloud.example.com/login")
			if err == nil {
				t.Fatal("OpenURL: got nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("OpenURL: got %q, want it to wrap %q", err, tt.wantErr)
			}
		})
	}
}
