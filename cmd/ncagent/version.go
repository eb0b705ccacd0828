package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/ncagent/ncagent/internal/buildinfo"
)

func init() {
	register(verb{name: "version", summary: "print the version and commit", run: runVersion})
}

func runVersion(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "version", "", "Print the ncagent version, the commit it was built from, and the Go version.")
	asJSON := fs.Bool("json", false, "print a JSON document")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *asJSON {
		json.NewEncoder(e.stdout).Encode(map[string]string{
			"version": buildinfo.Version, "commit": buildinfo.Commit, "go": runtime.Version(),
			"os": runtime.GOOS, "arch": runtime.GOARCH,
		})
		return exitOK
	}
	commit := buildinfo.Commit
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(e.stdout, "ncagent %s (commit %s, %s, %s/%s)\n", buildinfo.Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// flagSet is a verb's flag set; its usage goes to stdout for --help and
// to stderr after a usage error.
type flagSet struct {
	*flag.FlagSet
	e *env
}

// newFlagSet returns a flag set for a verb. argsUsage names the positional
// arguments; description says what the verb does.
func newFlagSet(e *env, name, argsUsage, description string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("ncagent "+name, flag.ContinueOnError), e: e}
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: ncagent %s [flags] %s\n\n%s\n\nFlags:\n", name, argsUsage, description)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; done reports that the verb should return code
// (after --help, or on a usage error).
func parseFlags(fs *flagSet, args []string) (code int, done bool) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(fs.e.stdout)
			fs.Usage()
			return exitOK, true
		}
	}
	// The flag package prints the error and the whole usage; say it in
	// one line with where to look instead.
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(fs.e.stderr)
	if err == flag.ErrHelp {
		return exitOK, true
	}
	if err != nil {
		verb := strings.TrimPrefix(fs.Name(), "ncagent ")
		errorf(fs.e, "%s: %v: run ncagent %s --help", verb, err, verb)
		return exitUsage, true
	}
	return 0, false
}
