package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDebInstallRemove builds the .deb with scripts/package, installs it
// with dpkg, runs the installed binary, removes the package and checks that
// none of its files remain. It changes the system, so it runs only as root
// with dpkg, and only when asked (NCAGENT_TEST_DEB=1, or CI=true).
func TestDebInstallRemove(t *testing.T) {
	if os.Getenv("NCAGENT_TEST_DEB") != "1" && os.Getenv("CI") != "true" {
		t.Skip("set NCAGENT_TEST_DEB=1 to build, install and remove the .deb (root and dpkg needed; takes a minute)")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: dpkg -i needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not found: not a Debian system")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "ncagent").CombinedOutput(); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("ncagent is already installed on this system: not replacing it from a test")
	}

	const version = "0.0.0-test+deb"
	const commit = "0123456789abcdef0123456789abcdef01234567"
	dist := t.TempDir()
	start := time.Now()
	cmd := exec.Command("bash", "scripts/package", "deb")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+version, "COMMIT="+commit, "DIST="+dist)
	cmd.Stderr = &testWriter{t}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/package deb: %v", err)
	}
	deb := strings.TrimSpace(string(out))
	if filepath.Dir(deb) != dist || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("scripts/package printed %q, want a .deb in %s", deb, dist)
	}
	built := time.Since(start)
	// Debian keeps the license in /usr/share/doc/ncagent/copyright (checked
	// below), not in a control field.
	for field, want := range map[string]string{
		"Recommends": "gnome-keyring | keepassxc | kwalletmanager",
	} {
		out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("dpkg-deb -f %s: got %q (%v), want %q", field, got, err, want)
		}
	}

	start = time.Now()
	dpkg(t, "-i", deb)
	installed := false
	t.Cleanup(func() {
		if installed {
			exec.Command("dpkg", "--purge", "ncagent").Run()
		}
	})
	installed = true
	installTime := time.Since(start)

	got, err := exec.Command("/usr/bin/ncagent", "version").Output()
	if err != nil {
		t.Fatalf("/usr/bin/ncagent version: %v", err)
	}
	if want := "ncagent " + version + " (commit " + commit + ","; !strings.HasPrefix(string(got), want) {
		t.Errorf("ncagent version: got %q, want prefix %q", got, want)
	}
	if v := dpkg(t, "-W", "-f=${Version}", "ncagent"); v != "0.0.0~test+deb" {
		// dpkg-query through the same helper: -W is a dpkg-query option.
		t.Errorf("package version: got %q, want %q", v, "0.0.0~test+deb")
	}

	list := strings.Split(dpkg(t, "-L", "ncagent"), "\n")
	wantFiles := []string{
		"/usr/bin/ncagent",
		"/usr/lib/systemd/user/ncagent.service",
		"/usr/lib/systemd/user/ncagent.socket",
		"/usr/share/applications/ncagent.desktop",
		"/usr/share/icons/hicolor/256x256/apps/ncagent.png",
		"/usr/share/icons/hicolor/scalable/apps/ncagent.svg",
		"/usr/share/man/man1/ncagent.1.gz",
		"/usr/share/doc/ncagent/README.package",
		"/usr/share/doc/ncagent/copyright",
		"/usr/share/doc/ncagent/LICENSE",
		"/usr/share/bash-completion/completions/ncagent",
		"/usr/share/zsh/vendor-completions/_ncagent",
		"/usr/share/fish/vendor_completions.d/ncagent.fish",
	}
	for _, w := range wantFiles {
		if !slices.Contains(list, w) {
			t.Errorf("dpkg -L ncagent lacks %s", w)
		}
	}
	if b, _ := os.ReadFile("/usr/share/doc/ncagent/copyright"); !strings.Contains(string(b), "License: Apache-2.0") {
		t.Errorf("the installed copyright file does not name Apache-2.0")
	}
	if b, _ := os.ReadFile("/usr/share/doc/ncagent/LICENSE"); !strings.Contains(string(b), "Apache License\n                           Version 2.0, January 2004") {
		t.Errorf("the installed LICENSE is not the Apache License 2.0")
	}
	if out, err := exec.Command("bash", "-n", "/usr/share/bash-completion/completions/ncagent").CombinedOutput(); err != nil {
		t.Errorf("bash -n of the installed completion: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("man"); err == nil {
		out, err := exec.Command("man", "-l", "/usr/share/man/man1/ncagent.1.gz").Output()
		if err != nil || !strings.Contains(string(out), "NCAGENT_SOCKET") {
			t.Errorf("man -l of the installed page: %v", err)
		}
	}
	unit, _ := os.ReadFile("/usr/lib/systemd/user/ncagent.service")
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/ncagent run\n") || isManaged(unit) {
		t.Errorf("installed service unit: want ExecStart=/usr/bin/ncagent run and no autostart marker, got\n%s", unit)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := systemdVerify(t, "/usr/lib/systemd/user/ncagent.socket", "/usr/lib/systemd/user/ncagent.service"); err != nil || out != "" {
			t.Errorf("systemd-analyze verify of the installed units: %v\n%s", err, out)
		}
	}

	// Record what is a file and what a directory before removal.
	var files, dirs []string
	for _, p := range list {
		if p == "" || p == "/." {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("listed but missing after install: %s", p)
			continue
		}
		if fi.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
	}

	start = time.Now()
	dpkg(t, "-r", "ncagent")
	installed = false
	removeTime := time.Since(start)
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("left after dpkg -r: %s", f)
		}
	}
	// A directory may stay only when another package owns it or it holds
	// files that are not ours.
	for _, d := range dirs {
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		if exec.Command("dpkg-query", "-S", d).Run() == nil {
			continue
		}
		if entries, _ := os.ReadDir(d); len(entries) == 0 {
			t.Errorf("empty directory left after dpkg -r: %s", d)
		}
	}
	if _, err := os.Stat("/usr/share/doc/ncagent"); err == nil {
		t.Error("/usr/share/doc/ncagent left after dpkg -r")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "ncagent").CombinedOutput(); err == nil && strings.Contains(string(out), " installed") {
		t.Errorf("dpkg still lists ncagent: %s", out)
	}
	t.Logf("timings: scripts/package deb %v, dpkg -i %v, dpkg -r %v (%d files, %d directories listed)",
		built.Round(10*time.Millisecond), installTime.Round(10*time.Millisecond), removeTime.Round(10*time.Millisecond), len(files), len(dirs))
}

// dpkg runs dpkg (or dpkg-query for -W/-L) and returns its trimmed output.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	name := "dpkg"
	if args[0] == "-W" || args[0] == "-L" {
		name = "dpkg-query"
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// testWriter sends a command's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
