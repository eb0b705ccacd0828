package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "unlock", summary: "unlock the secret store (file store passphrase, or the keychain prompt)", run: runUnlock})
	register(verb{name: "lock", summary: "make the agent forget the file store's key", run: runLock})
}

// maxPassphrase bounds a passphrase read from a file or the terminal.
const maxPassphrase = 4096

func runUnlock(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "unlock", "", `Unlock the agent's secret store, so that it can refresh tokens again.

With the file store (store = "file" in [agent], or where no keychain can be
reached) the agent needs its passphrase: ncagent unlock asks for it on the
terminal without echo, or reads it from --passphrase-file, and hands it to
the agent over the socket; the agent keeps the key in memory only, until
ncagent lock or its exit. The first unlock creates the file store (you type
the new passphrase twice). With the keychain, it asks the Secret Service to
unlock, which shows your desktop's unlock prompt.

The passphrase is never taken from the command line.

Exit codes: 0 unlocked, 2 no passphrase could be read, 3 no agent runs,
6 the store stays locked (wrong passphrase, prompt dismissed, damaged file).`)
	var cf clientFlags
	cf.register(fs, e, 2*time.Minute)
	passFile := fs.String("passphrase-file", "", "read the passphrase from this file (first line; - for standard input)")
	asJSON := fs.Bool("json", false, "print the /v1/unlock document")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "unlock takes no arguments (the passphrase is never taken from the command line): run ncagent unlock --help")
		return exitUsage
	}
	var cl *ipc.Client
	var r ipc.StoreResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, c *ipc.Client) (err error) {
		cl = c
		r, err = c.Unlock(ctx, ipc.UnlockRequest{})
		return err
	})
	if err != nil {
		return clientExit(e, path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	if r.State != "unlocked" && r.NeedsPassphrase {
		pass, err := readPassphrase(ctx, e, *passFile, r)
		if err != nil {
			errorf(e, "%v", err)
			return exitUsage
		}
		r, err = cl.Unlock(ctx, ipc.UnlockRequest{Passphrase: string(pass), Create: r.NeedsCreate})
		clear(pass)
		if err != nil {
			return clientExit(e, path, err)
		}
	} else if r.State != "unlocked" && r.NeedsCreate {
		r, err = cl.Unlock(ctx, ipc.UnlockRequest{Create: true})
		if err != nil {
			return clientExit(e, path, err)
		}
	}
	printStore(e, r, *asJSON)
	if r.State != "unlocked" {
		return exitStoreLocked
	}
	return exitOK
}

func runLock(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "lock", "", `Make the agent forget the file store's key. Tokens it has cached keep
being served; refreshes answer store_locked (exit code 6) until
ncagent unlock. The keychain is locked by your desktop, not by ncagent.`)
	var cf clientFlags
	cf.register(fs, e, 10*time.Second)
	asJSON := fs.Bool("json", false, "print the /v1/lock document")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cf.noStart = true
	var r ipc.StoreResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		r, err = cl.Lock(ctx)
		return err
	})
	if err != nil {
		return clientExit(e, path, err)
	}
	printStore(e, r, *asJSON)
	return exitOK
}

func printStore(e *env, r ipc.StoreResponse, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		what := "the keychain"
		if r.Store == "file" {
			what = "the file store " + r.Path
		}
		switch {
		case r.Created:
			fmt.Fprintf(e.stdout, "created and unlocked %s\n", what)
		default:
			fmt.Fprintf(e.stdout, "%s is %s\n", what, r.State)
		}
		if r.Message != "" {
			fmt.Fprintf(e.stdout, "note: %s\n", r.Message)
		}
	}
}

// readPassphrase reads the passphrase from file (- for stdin), else from
// the terminal without echo (twice for a new store).
func readPassphrase(ctx context.Context, e *env, file string, r ipc.StoreResponse) ([]byte, error) {
	if file != "" {
		var src io.Reader = e.stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return nil, fmt.Errorf("read --passphrase-file: %w", err)
			}
			defer f.Close()
			src = f
		}
		data, err := io.ReadAll(io.LimitReader(src, maxPassphrase+1))
		if err != nil {
			return nil, fmt.Errorf("read --passphrase-file: %w", err)
		}
		if len(data) > maxPassphrase {
			return nil, fmt.Errorf("--passphrase-file: longer than %d bytes", maxPassphrase)
		}
		line, _, _ := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil, errors.New("--passphrase-file: the first line is empty")
		}
		return bytes.Clone(line), nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, errors.New("unlock needs the passphrase: run it in a terminal, or pass --passphrase-file FILE")
	}
	prompt := "passphrase of the file store " + r.Path + ": "
	if r.NeedsCreate {
		prompt = "new passphrase for the file store " + r.Path + ": "
	}
	pass, err := askHidden(ctx, e, f, prompt)
	if err != nil || !r.NeedsCreate {
		return pass, err
	}
	again, err := askHidden(ctx, e, f, "the same passphrase again: ")
	if err != nil {
		return nil, err
	}
	defer clear(again)
	if !bytes.Equal(pass, again) {
		clear(pass)
		return nil, errors.New("the passphrases differ: run ncagent unlock again")
	}
	return pass, nil
}

// askHidden prompts on stderr and reads a line from the terminal f
// without echo. Ctrl-C (ctx, main's signal context) ends it at once with
// the terminal's echo back (see readInterruptible).
func askHidden(ctx context.Context, e *env, f *os.File, prompt string) ([]byte, error) {
	fd := int(f.Fd())
	saved, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase: %w", err)
	}
	fmt.Fprint(e.stderr, prompt)
	pass, err := readInterruptible(ctx, func() ([]byte, error) { return term.ReadPassword(fd) })
	if errors.Is(err, errInterrupted) {
		term.Restore(fd, saved)
		fmt.Fprintln(e.stderr)
		return nil, errors.New("interrupted: nothing was unlocked")
	}
	fmt.Fprintln(e.stderr)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, errors.New("empty passphrase: run ncagent unlock again")
	}
	return pass, nil
}
