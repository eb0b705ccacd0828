package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "login", summary: "sign an account in (browser, device code or app password)", run: runLogin})
}

func runLogin(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "login", "ACCOUNT", `Sign ACCOUNT in and keep its secret in the OS keychain. The running agent
(started on demand) owns the sign-in and the resulting refresh chain.

Methods:
  browser       OpenID Connect code flow with PKCE on a loopback redirect
                http://127.0.0.1:<port>/callback (Nextcloud's oidc app:
                http://localhost:<port>/callback); register it for the
                client at the IdP with any port (oidc app:
                http://localhost:*/callback); --redirect-host picks the other
  device        OAuth device code flow, for SSH sessions and machines
                without a browser
  app-password  Nextcloud Login Flow v2: works on every stock Nextcloud

With --server alone, browser is used when the server offers OpenID Connect
and a client id is known, otherwise app-password. The URL to open is always
printed, so it can be opened on another machine.`)
	var cf clientFlags
	cf.register(fs, e, 25*time.Minute)
	server := fs.String("server", "", "Nextcloud server URL, e.g. https://cloud.example.com")
	issuer := fs.String("issuer", "", "OpenID Connect issuer (default: the server)")
	clientID := fs.String("client-id", "", "OAuth client id registered at the issuer")
	secretFile := fs.String("client-secret-file", "", "file holding the client secret (confidential clients; kept in the keychain)")
	scopes := fs.String("scopes", "", `space-separated scopes to ask for, e.g. "openid profile files"`)
	method := fs.String("method", "", "browser, device or app-password (default: chosen from the server)")
	noBrowser := fs.Bool("no-browser", false, "do not open a browser; only print the URL")
	caFile := fs.String("ca-file", "", "PEM bundle of extra CAs to trust for this account's servers")
	redirectHost := fs.String("redirect-host", "", "loopback host of the browser redirect URI, localhost or 127.0.0.1 (default: localhost on Nextcloud's oidc app, else 127.0.0.1; kept for the account)")
	asJSON := fs.Bool("json", false, "print the progress events as JSON lines")
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	if account == "" {
		errorf(e, "login needs an account name: ncagent login ACCOUNT --server URL")
		return exitUsage
	}
	if err := agent.ValidateAccountName(account); err != nil {
		errorf(e, "%v", err)
		return exitUsage
	}
	switch *redirectHost {
	case "", agent.RedirectLocalhost, agent.RedirectLoopback:
	default:
		errorf(e, "bad --redirect-host %q: use localhost or 127.0.0.1", *redirectHost)
		return exitUsage
	}
	switch *method {
	case "", "browser", "device", "app-password":
	default:
		errorf(e, "bad --method %q: use browser, device or app-password", *method)
		return exitUsage
	}
	if *server == "" && *issuer == "" {
		// A new account needs to know where to sign in: a usage error,
		// said before any agent is asked.
		if files, err := loadFiles(e); err == nil {
			if _, ok := files.Config.Accounts[account]; !ok {
				errorf(e, "account %s is new: give its server: ncagent login %s --server https://cloud.example.com", account, account)
				return exitUsage
			}
		}
	}
	req := ipc.LoginRequest{
		Account:  account,
		Server:   strings.TrimRight(withScheme(*server), "/"),
		Issuer:   withScheme(*issuer),
		ClientID: *clientID,
		Scopes:   strings.Fields(*scopes),
		Method:   *method,

		RedirectHost: *redirectHost,
	}
	if *secretFile != "" {
		s, err := readSecretFile(e, *secretFile)
		if err != nil {
			errorf(e, "read client secret: %v", err)
			return exitUsage
		}
		req.ClientSecret = s
	}
	if *caFile != "" {
		abs, err := filepath.Abs(*caFile)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			errorf(e, "--ca-file: %v", err)
			return exitUsage
		}
		req.CAFile = abs
	}
	cl, path, err := cf.connect(ctx, e)
	if err != nil {
		return clientExit(e, path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	enc := json.NewEncoder(e.stdout)
	show := loginProgress{e: e, openBrowser: !*noBrowser}
	defer func() { agent.ForgetURL(show.opened) }() // the sign-in is over: the browser's trampoline can go
	final, err := cl.Login(ctx, req, func(ev ipc.LoginEvent) {
		if *asJSON {
			enc.Encode(ev)
			return
		}
		show.event(ev)
	})
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		errorf(e, "the sign-in of %s did not finish within %s: run ncagent login %s again (with a longer --timeout)", account, cf.timeout, account)
		return exitUnavailable
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		errorf(e, "sign-in of %s interrupted: run ncagent login %s to try again", account, account)
		return exitInterrupted
	default:
		return clientExit(e, path, err)
	}
	if *asJSON {
		enc.Encode(final)
	} else {
		fmt.Fprintf(e.stdout, "ncagent: %s\n", final.Message)
	}
	return exitOK
}

// withScheme makes a bare host ("cloud.example.com") an https URL, as a
// browser's address bar does; anything with a scheme is left to the
// agent's checks.
func withScheme(s string) string {
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	return "https://" + s
}

// loginProgress tells the user what to do as a sign-in progresses. The URL
// is always printed; the browser is opened at most once, and not at all
// when this login joined one already in progress (its tab is open). The
// chosen method is said only once the sign-in really started (the next
// event), so that an unreachable or mistyped server gets one clear error
// instead of "signing in with ..." followed by it.
type loginProgress struct {
	e           *env
	openBrowser bool
	method      *ipc.LoginEvent // said with the next event
	opened      string          // the URL opened in the browser
}

func (p *loginProgress) event(ev ipc.LoginEvent) {
	e := p.e
	if ev.Type == "method" {
		p.method = &ev
		return
	}
	if m := p.method; m != nil {
		p.method = nil
		fmt.Fprintf(e.stderr, "ncagent: signing in with %s: %s\n", m.Method, m.Reason)
	}
	switch ev.Type {
	case agent.EventJoined:
		fmt.Fprintf(e.stderr, "ncagent: %s\n", ev.Message)
		p.openBrowser = false
	case "open_url":
		fmt.Fprintf(e.stderr, "ncagent: open this URL to sign in:\n\n    %s\n\n", ev.URL)
		if p.openBrowser {
			p.openBrowser = false
			p.opened = ev.URL
			if err := agent.OpenURL(ev.URL); err != nil {
				fmt.Fprintf(e.stderr, "ncagent: could not open a browser (%v): open the URL yourself\n", err)
			}
		}
	case "user_code":
		fmt.Fprintf(e.stderr, "ncagent: on any device, open\n\n    %s\n\nand enter the code  %s\n\n", ev.URL, ev.UserCode)
	case "waiting":
		msg := ev.Message
		if msg == "" {
			msg = "waiting for the sign-in to finish"
		}
		fmt.Fprintf(e.stderr, "ncagent: %s…\n", msg)
	}
}
