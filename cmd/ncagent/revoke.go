package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "revoke", summary: "revoke an account's access and forget its secret", run: runRevoke})
}

func runRevoke(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "revoke", "ACCOUNT", `Revoke ACCOUNT's access at the server (RFC 7009 token revocation, or
deleting the Nextcloud app password), delete its secret from the keychain
and drop every cached token. The account stays configured, signed out:
ncagent login ACCOUNT signs it in again.`)
	var cf clientFlags
	cf.register(fs, e, 60*time.Second)
	asJSON := fs.Bool("json", false, "print the /v1/revoke document")
	account, code, done := parseWithAccount(e, fs, args)
	if done {
		return code
	}
	if account == "" {
		errorf(e, "revoke needs an account: ncagent revoke ACCOUNT")
		return exitUsage
	}
	var r ipc.RevokeResponse
	path, err := cf.call(ctx, e, func(ctx context.Context, cl *ipc.Client) (err error) {
		r, err = cl.Revoke(ctx, ipc.RevokeRequest{Account: account})
		return err
	})
	if err != nil {
		return clientExit(e, path, err)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return exitOK
	}
	printRevoke(e, account, r)
	return exitOK
}

// printRevoke says what a revocation did, and only what it did: revoking
// an account that was already signed out says so instead of claiming a
// deletion again.
func printRevoke(e *env, account string, r ipc.RevokeResponse) {
	if !r.ServerRevoked && !r.SecretDeleted && r.PurgedTokens == 0 {
		fmt.Fprintf(e.stdout, "%s was already signed out: no secret was stored, nothing to revoke\n", account)
		return
	}
	switch {
	case r.ServerRevoked && r.Where == "nextcloud":
		fmt.Fprintf(e.stdout, "revoked %s: the app password was deleted on the server\n", account)
	case r.ServerRevoked:
		fmt.Fprintf(e.stdout, "revoked %s at the identity provider (%s)\n", account, r.Endpoint)
	default:
		fmt.Fprintf(e.stdout, "signed %s out locally; the server did not revoke it\n", account)
	}
	if r.Note != "" {
		fmt.Fprintf(e.stdout, "note: %s\n", r.Note)
	}
	fmt.Fprintf(e.stdout, "keychain secret deleted: %v; cached tokens dropped: %d\n", r.SecretDeleted, r.PurgedTokens)
}
