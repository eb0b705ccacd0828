package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// clientFlags are the flags every client verb shares.
type clientFlags struct {
	socket  string
	noStart bool
	timeout time.Duration
}

func (c *clientFlags) register(fs *flagSet, e *env, timeout time.Duration) {
	fs.StringVar(&c.socket, "socket", "", "agent socket (default: $NCAGENT_SOCKET or the per-user default; see ncagent socket-path)")
	fs.BoolVar(&c.noStart, "no-start", e.getenv("NCAGENT_NO_START") == "1", "do not start an agent when none runs (also NCAGENT_NO_START=1)")
	fs.DurationVar(&c.timeout, "timeout", timeout, "how long to wait for the agent's answer")
}

func (c *clientFlags) socketPath(e *env) (string, error) {
	if c.socket != "" {
		return c.socket, nil
	}
	if s := e.getenv("NCAGENT_SOCKET"); s != "" {
		return s, nil
	}
	return ipc.SocketPath()
}

// call runs f, one request to the agent, with a client of it and ctx
// bounded by --timeout. When no agent answers and --no-start is not set,
// it starts one in the background first (like gpg-agent) and runs f again
// as soon as the socket takes it: with an agent running, a verb costs
// exactly f's round trip. path is the socket, for messages.
func (c *clientFlags) call(ctx context.Context, e *env, f func(context.Context, *ipc.Client) error) (path string, err error) {
	path, err = c.socketPath(e)
	if err != nil {
		return "", err
	}
	cl := ipc.NewClient(path) // its connection stays open for connect's caller
	attempt := func() error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return f(ctx, cl)
	}
	err = attempt()
	if err == nil || !errors.Is(err, ipc.ErrNotRunning) || c.noStart {
		return path, err
	}
	if err := startAgent(e, path); err != nil {
		return path, fmt.Errorf("start agent: %w", err)
	}
	// ErrNotRunning comes from the dial: nothing was sent, f may run again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = attempt()
		if !errors.Is(err, ipc.ErrNotRunning) {
			return path, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return path, fmt.Errorf("started an agent, but it did not answer on %s within 10s (see %s): %w", path, agentLogPath(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connect returns a client of the running agent, starting one first like
// call. It costs a status round trip; verbs of one request use call.
func (c *clientFlags) connect(ctx context.Context, e *env) (*ipc.Client, string, error) {
	var client *ipc.Client
	path, err := c.call(ctx, e, func(ctx context.Context, cl *ipc.Client) error {
		client = cl
		_, err := cl.Status(ctx)
		return err
	})
	if err != nil {
		return nil, path, err
	}
	return client, path, nil
}

// agentLogPath is where an agent started on demand writes its log.
func agentLogPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "ncagent", "agent.log")
}

// startAgent starts "ncagent run --headless" detached from this process,
// logging to agentLogPath.
func startAgent(e *env, socket string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := agentLogPath()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"run", "--socket", socket}
	if !graphicalSession(e) {
		args = append(args, "--headless")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = agentEnv(os.Environ())
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "ncagent: started an agent in the background (pid %d, log %s)\n", cmd.Process.Pid, logPath)
	return cmd.Process.Release()
}

// clientExit prints a client error and returns the exit code for it.
func clientExit(e *env, path string, err error) int {
	var we *ipc.Error
	switch {
	case errors.Is(err, ipc.ErrNotRunning):
		errorf(e, "no agent is running on %s: start one with ncagent run, or drop --no-start", path)
		return exitNotRunning
	case errors.As(err, &we):
		errorf(e, "%s", we.Message)
		switch we.Code {
		case ipc.CodeNeedsLogin:
			return exitNeedsLogin
		case ipc.CodeIdPUnavailable, ipc.CodeTimeout:
			return exitUnavailable
		case ipc.CodeStoreLocked:
			return exitStoreLocked
		}
		return exitError
	case errors.Is(err, context.DeadlineExceeded):
		errorf(e, "the agent did not answer in time: retry with a longer --timeout")
		return exitUnavailable
	}
	errorf(e, "%v", err)
	return exitError
}
