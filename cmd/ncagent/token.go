package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "token", summary: "print a background token for an account", run: runToken})
	register(verb{name: "exchange", summary: "exchange a subject token for a session token (RFC 8693)", run: runExchange})
}

type outputFlags struct{ format string }

func (o *outputFlags) check(e *env) bool {
	switch o.format {
	case "raw", "json", "header":
		return true
	}
	errorf(e, "bad --format %q: use raw, json or header", o.format)
	return false
}

// print writes the token in the chosen format. Only stdout ever sees it.
func (o *outputFlags) print(w io.Writer, t ipc.TokenResponse) {
	switch o.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(t)
	case "header":
		fmt.Fprintln(w, t.Authorization)
	default:
		fmt.Fprintln(w, t.AccessToken)
	}
}

func runToken(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "token", "[ACCOUNT]", `Print a background token for ACCOUNT (default: the default or only account).
The agent serves it from its cache or refreshes it through the account's
single refresh chain. Errors go to stderr with a non-zero exit code and
nothing on stdout.`)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	scopes := fs.String("scopes", "", `space-separated scopes, e.g. "files calendar" (default: the account's)`)
	audience := fs.String("audience", "", "audience of the token")
	minValid := fs.Duration("min-valid", 0, "the token must stay valid at least this long, e.g. 2m")
	var of outputFlags
	fs.StringVar(&of.format, "format", "raw", "output: raw (the token), json (the /v1/token document) or header (the Authorization value)")
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	if !of.check(e) {
		return exitUsage
	}
	req := ipc.TokenRequest{
		Account:         account,
		Scopes:          strings.Fields(*scopes),
		Audience:        *audience,
		MinValidSeconds: int64(minValid.Seconds()),
		ClientHint:      "ncagent token",
	}
	var t ipc.TokenResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		t, err = cl.Token(ctx, req)
		return err
	})
	if err != nil {
		return clientExit(e, path, err)
	}
	of.print(e.stdout, t)
	return exitOK
}

func runExchange(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "exchange", "[ACCOUNT] --subject-token-file FILE|-", `Exchange a subject token for a session token (RFC 8693 token exchange).
A JWT subject token is verified against the issuer's keys first. The
subject token is read from a file or from stdin (-), never from the
command line, where other users could see it.`)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	subjectFile := fs.String("subject-token-file", "", "file holding the subject token, or - for stdin (required)")
	subjectType := fs.String("subject-token-type", "", "subject token type URI (default: access token)")
	actorFile := fs.String("actor-token-file", "", "file holding an actor token, for delegation")
	audience := fs.String("audience", "", "audience of the session token (default: nextcloud)")
	scopes := fs.String("scopes", "", "space-separated scopes")
	var of outputFlags
	fs.StringVar(&of.format, "format", "raw", "output: raw, json or header")
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	if !of.check(e) {
		return exitUsage
	}
	if *subjectFile == "" {
		errorf(e, "exchange needs --subject-token-file FILE (or - for stdin)")
		return exitUsage
	}
	subject, err := readSecretFile(e, *subjectFile)
	if err != nil {
		errorf(e, "read subject token: %v", err)
		return exitUsage
	}
	var actor string
	if *actorFile != "" {
		if actor, err = readSecretFile(e, *actorFile); err != nil {
			errorf(e, "read actor token: %v", err)
			return exitUsage
		}
	}
	req := ipc.ExchangeRequest{
		Account:          account,
		SubjectToken:     subject,
		SubjectTokenType: *subjectType,
		Audience:         *audience,
		Scopes:           strings.Fields(*scopes),
		ActorToken:       actor,
		ClientHint:       "ncagent exchange",
	}
	var t ipc.TokenResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		t, err = cl.Exchange(ctx, req)
		return err
	})
	if err != nil {
		return clientExit(e, path, err)
	}
	of.print(e.stdout, t)
	return exitOK
}

// readSecretFile reads a token from a file or stdin ("-"), trimmed.
func readSecretFile(e *env, name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(e.stdin, ipc.MaxBodyBytes))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}

// parseWithAccount parses flags with at most one positional ACCOUNT,
// accepting flags after it too ("token work --format json").
func parseWithAccount(e *env, fs *flagSet, args []string) (account string, code int, done bool) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		account, args = args[0], args[1:]
	}
	if code, done := parseFlags(fs, args); done {
		return "", code, true
	}
	rest := fs.Args()
	if len(rest) > 0 && account == "" {
		account, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		errorf(e, "unexpected arguments %q: give at most one account", rest)
		return "", exitUsage, true
	}
	return account, 0, false
}
