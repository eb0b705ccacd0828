// Command ncagent is a per-user credential agent for Nextcloud.
//
// main owns flag parsing, verbs, exit codes and signals; the work is done by
// the agent, broker, ipc, ui and packaging packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
)

// Exit codes shared by all verbs.
const (
	exitOK          = 0
	exitError       = 1   // the operation failed
	exitUsage       = 2   // bad flags or arguments
	exitNotRunning  = 3   // no agent answers on the socket
	exitNeedsLogin  = 4   // an account needs sign-in
	exitUnavailable = 5   // the identity provider could not be reached
	exitStoreLocked = 6   // the keychain or file store is locked: run ncagent unlock
	exitInterrupted = 130 // interrupted (128 + SIGINT, as shells report)
)

// env is what a verb gets from main: its streams and environment. Tests run
// verbs in-process through run().
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// verb is one subcommand. run parses its own flags from args.
type verb struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
	// childExit: the exit code is a child's (exec passes it through),
	// kept as it is when a signal ended the child.
	childExit bool
}

var verbs = map[string]verb{}

// register adds a verb; each verb file calls it from init.
func register(v verb) { verbs[v.name] = v }

// The main goroutine keeps the process's main thread: macOS runs the menu
// bar only there, so ncagent run hands it to the tray (runTray) and serves
// on other goroutines. "Calling LockOSThread from an init function causes
// the main function to be invoked on that thread" (runtime.LockOSThread).
func init() { runtime.LockOSThread() }

func main() { os.Exit(mainCode()) }

// mainCode runs the command line of this process and returns its exit code.
func mainCode() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, args)
	if ctx.Err() != nil && code != exitOK && !(len(args) > 0 && verbs[args[0]].childExit) {
		return exitInterrupted // a verb cut short by Ctrl-C or SIGTERM
	}
	return code
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 {
			if v, ok := verbs[args[1]]; ok {
				return v.run(ctx, e, []string{"--help"})
			}
		}
		usage(e.stdout)
		return exitOK
	case "--version", "-version":
		args = []string{"version"}
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "ncagent: unknown command %q: run ncagent --help\n", args[0])
		return exitUsage
	}
	return v.run(ctx, e, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "ncagent is a per-user credential agent for Nextcloud.\n\nUsage:\n  ncagent <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintf(w, "\nRun ncagent <command> --help for the flags of a command.\n")
}

// errorf prints a user-facing error: prefixed, lowercase, no trailing period.
func errorf(e *env, format string, a ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, a...), ".\n")
	fmt.Fprintf(e.stderr, "ncagent: %s\n", msg)
}
