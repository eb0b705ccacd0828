package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/broker"
)

// cmdFileStore: "filestore PASSFILE ACCOUNT..." opens the file store at
// $NCAGENT_FILE_STORE with the passphrase in PASSFILE, remembers each
// account's secret (so that secretfree looks for it) and checks it is a
// refresh token the authorization server still accepts: the chain is
// alive and the store holds its latest link. "filestore -client PASSFILE
// ACCOUNT..." checks each account's client secret is the confidential
// client's. "! filestore PASSFILE ACCOUNT..." checks the store holds
// neither a secret nor a client secret of any of the accounts.
func cmdFileStore(ts *testscript.TestScript, neg bool, args []string) {
	client := len(args) > 0 && args[0] == "-client"
	if client {
		args = args[1:]
	}
	if len(args) < 2 || (neg && client) {
		ts.Fatalf("usage: [!] filestore [-client] PASSFILE ACCOUNT...")
	}
	pass, _, _ := strings.Cut(ts.ReadFile(args[0]), "\n")
	f := agent.NewFileStore(agent.FileStoreOptions{Path: ts.Getenv("NCAGENT_FILE_STORE")})
	if err := f.Unlock([]byte(pass), false); err != nil {
		ts.Fatalf("filestore: %v", err)
	}
	w := worldOf(ts)
	for _, a := range args[1:] {
		switch {
		case neg:
			for what, get := range map[string]func(string) (broker.Secret, error){"secret": f.Get, "client secret": f.GetClientSecret} {
				if _, err := get(a); !errors.Is(err, broker.ErrNotFound) {
					ts.Fatalf("filestore: the %s of %s is still in the store (%v)", what, a, err)
				}
			}
		case client:
			s, err := f.GetClientSecret(a)
			if err != nil {
				ts.Fatalf("filestore: %v", err)
			}
			if s.Reveal() != w.idp.ConfidentialSecret {
				ts.Fatalf("filestore: the client secret of %s is not the confidential client's", a)
			}
		default:
			s, err := f.Get(a)
			if err != nil {
				ts.Fatalf("filestore: %v", err)
			}
			w.remember(s.Reveal())
			if !w.idp.RefreshTokenActive(s.Reveal()) {
				ts.Fatalf("filestore: the refresh token of %s is not active at the authorization server", a)
			}
		}
	}
}

// cmdPrivate: "private DIR" checks DIR is 0700 and every file in it 0600.
func cmdPrivate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: private DIR")
	}
	dir := ts.MkAbs(args[0])
	fi, err := os.Stat(dir)
	if err != nil {
		ts.Fatalf("private: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		ts.Fatalf("private: %s has mode %04o, want 0700", dir, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		ts.Fatalf("private: %s: %v (%d entries)", dir, err, len(entries))
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			ts.Fatalf("private: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			ts.Fatalf("private: %s has mode %04o, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
}

// cmdTruncate: "truncate FILE" cuts the last 20 bytes of FILE (a copy cut
// short by a full disk or a crash of another program).
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: truncate FILE")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	if err != nil || len(data) < 40 {
		ts.Fatalf("truncate: %v (%d bytes)", err, len(data))
	}
	if err := os.WriteFile(p, data[:len(data)-20], 0o600); err != nil {
		ts.Fatalf("truncate: %v", err)
	}
}

// cmdNoDaemons fails when a D-Bus or keyring daemon runs with this
// script's agent environment ($NCAGENT_SOCKET): one the agent (or
// something it ran) started, even after it daemonized and was reparented.
func cmdNoDaemons(ts *testscript.TestScript, neg bool, args []string) {
	mark := []byte("NCAGENT_SOCKET=" + ts.Getenv("NCAGENT_SOCKET") + "\x00")
	procs, _ := filepath.Glob("/proc/[0-9]*")
	if len(procs) == 0 {
		ts.Fatalf("nodaemons: cannot list processes in /proc")
	}
	for _, p := range procs {
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if !strings.HasPrefix(name, "dbus-") && !strings.HasPrefix(name, "gnome-keyring") && !strings.Contains(name, "keyring") {
			continue
		}
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err == nil && bytes.Contains(env, mark) {
			pid, _ := strconv.Atoi(filepath.Base(p))
			ts.Fatalf("nodaemons: %s (pid %d) was started from this script's agent", name, pid)
		}
	}
}
