//go:build unix

package ipc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// envHelper makes the test binary act as a helper process instead of
// running tests: "rawclient" (a client that reports how many bytes the
// server sent) or "activated" (an agent started by socket activation).
const envHelper = "NCAGENT_IPC_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "":
		os.Exit(m.Run())
	case "rawclient":
		os.Exit(helperRawClient(os.Getenv(EnvSocket)))
	case "activated":
		os.Exit(helperActivated())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper")
		os.Exit(2)
	}
}

// helperRawClient connects, sends a token request and prints the number of
// bytes received before the server closed the connection.
func helperRawClient(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Printf("dial error: %v\n", err)
		return 2
	}
	defer c.Close()
	io.WriteString(c, "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nContent-Length: 2\r\n\r\n{}")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := readUntilClosed(c)
	fmt.Printf("connected uid=%d bytes=%d err=%v\n", os.Getuid(), len(got), err)
	return 0
}

// helperActivated plays systemd's part that only the child can: it sets
// LISTEN_PID to its own pid (the parent passed fd 3 and LISTEN_FDS=1),
// then serves until its stdin closes.
func helperActivated() int {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	ln, ok, err := ListenActivated()
	if err != nil || !ok {
		fmt.Printf("ListenActivated: ok=%v err=%v\n", ok, err)
		return 3
	}
	if os.Getenv("LISTEN_PID") != "" || os.Getenv("LISTEN_FDS") != "" {
		fmt.Println("LISTEN_* left in the environment")
		return 4
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	b := &fakeBackend{status: func(context.Context) (StatusResponse, error) {
		return StatusResponse{Version: "activated", PID: os.Getpid()}, nil
	}}
	srv := NewServer(b, ServerOptions{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err := srv.Run(ctx, ln); err != nil {
		fmt.Printf("Run: %v\n", err)
		return 5
	}
	return 0
}
