package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "exec", summary: "run a program with Nextcloud access, no long-lived secret in its environment", run: runExec,
		childExit: true})
}

const execHelp = `Run COMMAND with access to the account's Nextcloud. By default COMMAND gets
a session of the agent's loopback proxy, which adds the account's real,
fresh credentials to each request, for as long as COMMAND runs:
  NEXTCLOUD_HOST          the proxy's URL on 127.0.0.1 (with the server's path)
  NEXTCLOUD_USERNAME      the real login name
  NEXTCLOUD_PASSWORD      a random credential of this session only, also in
  NEXTCLOUD_APP_PASSWORD  (it opens nothing once COMMAND has exited)
  NCAGENT_SOCKET          the agent socket
No refresh token, access token or app password enters COMMAND's
environment, and access keeps working for hours: the proxy refreshes
tokens through the agent. exec stays as COMMAND's parent while it runs,
forwards signals to it and passes its exit code through.

With --direct, COMMAND gets the real credentials instead (less safe: they
sit in its environment, its crash reports and every process it starts):
  NEXTCLOUD_HOST, NEXTCLOUD_USERNAME, and NEXTCLOUD_PASSWORD (app-password
  accounts) or NEXTCLOUD_ACCESS_TOKEN (OIDC: valid only for its lifetime)
and exec replaces itself with COMMAND. --direct without a command prints
the variables as shell assignments, for eval; without --direct there is
nothing to print, because a proxy session lives only as long as exec.

This is how stdio MCP servers such as nextcloud-mcp-server get access
without a secret in the client's config file.

An ACCOUNT first (followed by --, or the name of a configured account) is
the account, as with --account (aws-vault's "exec NAME -- COMMAND").`

func runExec(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "exec", "[--direct] [ACCOUNT] -- COMMAND [ARGS...]", execHelp)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	account := fs.String("account", "", "account (default: the default or only account)")
	scopes := fs.String("scopes", "", "space-separated scopes of the access tokens")
	audience := fs.String("audience", "", "audience of the access tokens")
	direct := fs.Bool("direct", false, "put the real credentials in COMMAND's environment (less safe, see above)")
	minValid := fs.Duration("min-valid", 0, "with --direct: the access token must stay valid at least this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	argv := fs.Args()
	argv, *account = execAccount(e, argv, *account)
	if len(argv) == 0 && !*direct {
		errorf(e, "exec needs a command: ncagent exec [flags] -- COMMAND [ARGS...] (only --direct can print variables for eval: a proxy session ends with exec)")
		return exitUsage
	}
	path := ""
	if len(argv) > 0 {
		p, err := exec.LookPath(argv[0])
		if err != nil {
			errorf(e, "exec: %v", err)
			return 127
		}
		path = p
	}
	cl, sock, err := cf.connect(ctx, e)
	if err != nil {
		return clientExit(e, sock, err)
	}
	if *direct {
		return execDirect(ctx, e, cl, cf, sock, path, argv, ipc.TokenRequest{
			Account:         *account,
			Scopes:          strings.Fields(*scopes),
			Audience:        *audience,
			MinValidSeconds: int64(minValid.Seconds()),
		})
	}
	octx, cancel := context.WithTimeout(ctx, cf.timeout)
	sess, err := cl.OpenSession(octx, ipc.SessionRequest{
		Account:  *account,
		Scopes:   strings.Fields(*scopes),
		Audience: *audience,
		Command:  strings.Join(argv, " "),
	})
	cancel()
	if err != nil {
		return clientExit(e, sock, err)
	}
	defer sess.Close()
	vars := []string{
		"NEXTCLOUD_HOST=" + sess.Host,
		"NEXTCLOUD_USERNAME=" + sess.Username,
		"NEXTCLOUD_PASSWORD=" + sess.Password,
		"NEXTCLOUD_APP_PASSWORD=" + sess.Password,
		"NCAGENT_SOCKET=" + sock,
	}
	return runChild(e, path, argv, mergeEnv(os.Environ(), vars), sess.Done())
}

// execDirect is exec --direct: the real credentials in the environment.
func execDirect(ctx context.Context, e *env, cl *ipc.Client, cf clientFlags, sock, path string, argv []string, req ipc.TokenRequest) int {
	if len(argv) > 0 {
		req.ClientHint = "ncagent exec --direct " + argv[0]
	} else {
		req.ClientHint = "ncagent exec --direct (eval)"
	}
	tctx, cancel := context.WithTimeout(ctx, cf.timeout)
	t, err := cl.Token(tctx, req)
	cancel()
	if err != nil {
		return clientExit(e, sock, err)
	}
	vars, err := credentialEnv(t)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	vars = append(vars, "NCAGENT_SOCKET="+sock)
	if len(argv) == 0 {
		for _, v := range vars {
			k, val, _ := strings.Cut(v, "=")
			fmt.Fprintf(e.stdout, "export %s=%s\n", k, shellQuote(val))
		}
		return exitOK
	}
	return execCommand(e, path, argv, mergeEnv(os.Environ(), vars))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// credentialEnv returns the NEXTCLOUD_* variables for a token.
func credentialEnv(t ipc.TokenResponse) ([]string, error) {
	vars := []string{"NEXTCLOUD_HOST=" + t.Server}
	if strings.EqualFold(t.TokenType, "Basic") {
		raw, err := base64.StdEncoding.DecodeString(t.AccessToken)
		if err != nil {
			return nil, fmt.Errorf("the agent sent malformed Basic credentials")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("the agent sent malformed Basic credentials")
		}
		if t.Username == "" {
			t.Username = user
		}
		return append(vars, "NEXTCLOUD_USERNAME="+t.Username, "NEXTCLOUD_PASSWORD="+pass), nil
	}
	return append(vars, "NEXTCLOUD_USERNAME="+t.Username, "NEXTCLOUD_ACCESS_TOKEN="+t.AccessToken), nil
}

// mergeEnv returns base with vars set, replacing earlier values, and any
// inherited credential variables removed.
func mergeEnv(base, vars []string) []string {
	drop := map[string]bool{"NEXTCLOUD_PASSWORD": true, "NEXTCLOUD_APP_PASSWORD": true, "NEXTCLOUD_ACCESS_TOKEN": true}
	for _, v := range vars {
		k, _, _ := strings.Cut(v, "=")
		drop[k] = true
	}
	out := make([]string, 0, len(base)+len(vars))
	for _, v := range base {
		k, _, _ := strings.Cut(v, "=")
		if !drop[k] {
			out = append(out, v)
		}
	}
	return append(out, vars...)
}
