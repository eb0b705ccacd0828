package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
)

// runChild runs the command as a child and waits for it, forwarding the
// signals exec receives (forwardedSignals) and passing its exit code
// through: a child killed by a signal gives 128 + the signal's number, as
// a shell reports it. ended is closed if the agent ends the session
// first; the child keeps running (its requests then fail) and exec says
// so on stderr.
func runChild(e *env, path string, argv, environ []string, ended <-chan struct{}) int {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args = argv
	cmd.Env = environ
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		errorf(e, "exec %s: %v", argv[0], err)
		return 126
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			cmd.Process.Signal(s)
		case <-ended:
			errorf(e, "exec: the agent ended the session; %s can no longer reach Nextcloud: restart it once the agent runs again", argv[0])
			ended = nil
		case err := <-done:
			return exitCodeOf(e, argv[0], err)
		}
	}
}

func exitCodeOf(e *env, name string, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if sig, ok := signalOf(ee); ok {
			return 128 + sig
		}
		return ee.ExitCode()
	}
	errorf(e, "exec %s: %v", name, err)
	return 126
}
