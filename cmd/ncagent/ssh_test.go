package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// sshdPath returns OpenSSH's server, ok only when it can run here: as
// root (privilege separation), with an ssh client.
func sshdPath() (string, bool) {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		sshd = "/usr/sbin/sshd"
	}
	_, err = os.Stat(sshd)
	_, cerr := exec.LookPath("ssh")
	return sshd, err == nil && cerr == nil && os.Geteuid() == 0
}

// scriptCondition answers the scripts' conditions: [sshd] (see cmdSSHD).
func scriptCondition(cond string) (bool, error) {
	if cond == "sshd" {
		_, ok := sshdPath()
		return ok, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdSSHD: "sshd" starts a private OpenSSH server on a loopback port for
// the rest of the script, that lets in $WORK/id_ed25519 as the current
// user, and sets $SSHPORT and $SSHKEY. Scripts guard it with
// "[!sshd] skip": it needs root (sshd's privilege separation) and sshd.
func cmdSSHD(ts *testscript.TestScript, neg bool, args []string) {
	sshd, ok := sshdPath()
	if !ok {
		ts.Fatalf("sshd: not available; guard the script with [!sshd] skip")
	}
	dir := ts.MkAbs("sshd")
	os.MkdirAll(dir, 0o700)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	keygen := func(path string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
			ts.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	keygen(filepath.Join(dir, "host"))
	key := ts.MkAbs("id_ed25519")
	keygen(key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
`, port, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgPath := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "sshd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		ts.Fatalf("start sshd: %v", err)
	}
	ts.Defer(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(scriptWait)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			ts.Fatalf("sshd did not listen on %d: %v\n%s", port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Setenv("SSHPORT", strconv.Itoa(port))
	ts.Setenv("SSHKEY", key)
}
