package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
)

// The shell completions and the man page are generated from the verb
// table and from each verb's own --help text, so that neither drifts from
// what the verbs accept.

// flagDoc is one flag of a verb, as its --help prints it.
type flagDoc struct {
	name  string // without dashes
	arg   string // the value's name ("string", "duration"), empty for a bool
	usage string
}

// verbHelp returns the --help text of verb name.
func verbHelp(name string) string {
	var out bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard, getenv: func(string) string { return "" }}
	verbs[name].run(context.Background(), e, []string{"--help"})
	return out.String()
}

// verbFlags returns the flags in a --help text. The flag package prints
// each as "  -name type" and its usage on the next line(s), indented by a
// tab (flag.PrintDefaults).
func verbFlags(help string) []flagDoc {
	_, flags, ok := strings.Cut(help, "\nFlags:\n")
	if !ok {
		return nil
	}
	var out []flagDoc
	for _, line := range strings.Split(flags, "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			name, arg, _ := strings.Cut(rest, " ")
			out = append(out, flagDoc{name: name, arg: strings.TrimSpace(arg)})
			continue
		}
		if u := strings.TrimSpace(line); u != "" && len(out) > 0 {
			f := &out[len(out)-1]
			f.usage = strings.TrimSpace(f.usage + " " + u)
		}
	}
	return out
}

// verbNames returns the registered verbs, sorted.
func verbNames() []string {
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// subcommands are the words some verbs take first.
var subcommands = map[string][]string{
	"autostart":  {"enable", "disable", "status", "session"},
	"completion": {"bash", "zsh", "fish"},
}

// accountVerbs take an account name as their first argument.
var accountVerbs = []string{"default", "exchange", "exec", "login", "remove", "revoke", "token"}
