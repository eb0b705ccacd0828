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
	register(verb{name: "exec", summary: "run a program with Nextcloud credentials in its environment", run: runExec})
}

func runExec(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "exec", "-- COMMAND [ARGS...]", `Run COMMAND with the account's credentials in its environment:
  NEXTCLOUD_HOST          the server URL
  NEXTCLOUD_USERNAME      the login name
  NEXTCLOUD_PASSWORD      the app password (app-password accounts), or
  NEXTCLOUD_ACCESS_TOKEN  a fresh access token (OIDC accounts)
  NCAGENT_SOCKET          the agent socket, to ask for fresh tokens later
COMMAND's exit code is passed through. This is how stdio MCP servers such
as nextcloud-mcp-server get credentials without a secret in the client's
config file.`)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	account := fs.String("account", "", "account (default: the default or only account)")
	scopes := fs.String("scopes", "", "space-separated scopes for the access token")
	audience := fs.String("audience", "", "audience of the access token")
	minValid := fs.Duration("min-valid", 0, "the access token must stay valid at least this long")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	argv := fs.Args()
	if len(argv) == 0 {
		errorf(e, "exec needs a command: ncagent exec [flags] -- COMMAND [ARGS...]")
		return exitUsage
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		errorf(e, "exec: %v", err)
		return 127
	}
	cl, sock, err := cf.connect(ctx, e)
	if err != nil {
		return clientExit(e, sock, err)
	}
	tctx, cancel := context.WithTimeout(ctx, cf.timeout)
	t, err := cl.Token(tctx, ipc.TokenRequest{
		Account:         *account,
		Scopes:          strings.Fields(*scopes),
		Audience:        *audience,
		MinValidSeconds: int64(minValid.Seconds()),
		ClientHint:      "ncagent exec " + argv[0],
	})
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
	environ := mergeEnv(os.Environ(), vars)
	return execCommand(e, path, argv, environ)
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
// inherited credential variables of the other kind removed.
func mergeEnv(base, vars []string) []string {
	drop := map[string]bool{"NEXTCLOUD_PASSWORD": true, "NEXTCLOUD_ACCESS_TOKEN": true}
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
