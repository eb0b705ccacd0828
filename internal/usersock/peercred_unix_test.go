//go:build unix

package usersock

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestPeerCredSelf(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		// No peer credentials: not even our own server is trusted.
		if !errors.Is(err, ErrPeerCredUnsupported) {
			t.Fatalf("Dial: got %v, want ErrPeerCredUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	p, err := PeerCred(sc)
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != os.Getuid() {
		t.Errorf("got uid %d, want %d", p.UID, os.Getuid())
	}
	if runtime.GOOS != "freebsd" && p.PID != os.Getpid() {
		t.Errorf("got pid %d, want %d", p.PID, os.Getpid())
	}
	if exe, _ := os.Executable(); runtime.GOOS == "linux" && p.Exe != exe {
		t.Errorf("got exe %q, want %q", p.Exe, exe)
	}
	if err := CheckSelf(p); err != nil {
		t.Errorf("CheckSelf of our own peer: %v", err)
	}
}

func TestCheckSelf(t *testing.T) {
	cases := []struct {
		name string
		p    Peer
		want error
	}{
		{"self", Peer{UID: os.Getuid()}, nil},
		{"other uid", Peer{UID: os.Getuid() + 1}, ErrForeignPeer},
		{"unknown uid", Peer{UID: -1}, ErrForeignPeer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckSelf(tc.p); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}
