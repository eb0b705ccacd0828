package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

func init() {
	register(verb{name: "stop", summary: "stop the running agent", run: runStop})
}

func runStop(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "stop", "", `Stop the agent that answers on the socket (as gpgconf --kill gpg-agent
does): it finishes what it is doing, keeps every secret in the keychain and
removes its socket. With no agent running there is nothing to do (exit 0).
The next command that needs an agent starts one again.`)
	var cf clientFlags
	cf.register(fs, e, 10*time.Second)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "stop takes no arguments: run ncagent stop --help")
		return exitUsage
	}
	path, err := cf.socketPath(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	st, ok, err := runningAgent(ctx, path)
	if err != nil {
		return clientExit(e, path, err)
	}
	if !ok {
		fmt.Fprintf(e.stderr, "ncagent: no agent is running on %s\n", path)
		return exitOK
	}
	p, err := os.FindProcess(st.PID)
	if err == nil {
		err = signalStop(p)
	}
	if err != nil {
		errorf(e, "stop the agent (pid %d): %v", st.PID, err)
		return exitError
	}
	deadline := time.Now().Add(cf.timeout)
	for {
		if _, ok, _ := runningAgent(ctx, path); !ok {
			break
		}
		if time.Now().After(deadline) {
			errorf(e, "the agent (pid %d) did not stop within %s: see its log, or kill %d", st.PID, cf.timeout, st.PID)
			return exitError
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(e.stdout, "ncagent: stopped the agent (pid %d)\n", st.PID)
	return exitOK
}
