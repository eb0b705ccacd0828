package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/ipc"
)

// loadFiles reads config.toml and the state file where the agent reads
// them ($NCAGENT_CONFIG, $NCAGENT_STATE or the defaults).
func loadFiles(e *env) (*agent.Files, error) {
	cfgPath, statePath, err := filePaths(e)
	if err != nil {
		return nil, err
	}
	f, _, err := agent.LoadFiles(cfgPath, statePath)
	return f, err
}

// filePaths returns the paths of config.toml and of the state file.
func filePaths(e *env) (cfgPath, statePath string, err error) {
	cfgPath = e.getenv("NCAGENT_CONFIG")
	if cfgPath == "" {
		if cfgPath, err = agent.ConfigPath(); err != nil {
			return "", "", err
		}
	}
	statePath, err = agent.StatePathFor(cfgPath)
	return cfgPath, statePath, err
}

// runningAgent returns the status of the agent on socket, without starting
// one; ok is false when none runs.
func runningAgent(ctx context.Context, socket string) (st ipc.StatusResponse, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err = ipc.NewClient(socket).Status(ctx)
	if errors.Is(err, ipc.ErrNotRunning) {
		return st, false, nil
	}
	return st, err == nil, err
}

// reloadAgent asks the running agent on socket (if any) to read its files
// again after a verb changed the state file, and waits up to 5s until its
// status satisfies applied. Without SIGHUP (Windows) the agent's own
// polling picks the change up.
func reloadAgent(ctx context.Context, socket string, applied func(ipc.StatusResponse) bool) error {
	st, ok, err := runningAgent(ctx, socket)
	if !ok {
		return err
	}
	if p, err := os.FindProcess(st.PID); err == nil {
		signalReload(p)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !applied(st) {
		if time.Now().After(deadline) {
			return errors.New("the running agent did not pick the change up within 5s: restart it (ncagent stop)")
		}
		time.Sleep(20 * time.Millisecond)
		if st, ok, err = runningAgent(ctx, socket); !ok {
			return err
		}
	}
	return nil
}
