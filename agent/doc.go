// Package agent is the ncagent daemon: config and accounts, the keychain
// store, the sign-in flows (browser PKCE, device code, Nextcloud Login
// Flow v2), account state and lifecycle. It implements ipc.Backend; ipc
// speaks to clients, broker owns the tokens, agent decides which account,
// whether it is signed in, and how a sign-in runs.
//
// # Contract
//
//	a, err := agent.New(agent.Options{Store: agent.NewKeychain("ncagent", 0), Logger: log})
//	defer a.Close()            // safe twice
//	err = a.Run(ctx, ln)       // serves ipc on ln until ctx ends
//
// New loads config.toml (LoadConfig: at most 1 MiB, a regular file, no
// secret keys) and prepares one broker chain per account; it touches
// neither the network nor the keychain. The Agent is safe for concurrent
// use. Login runs at most one sign-in per account: a second request joins
// the one in progress (EventJoined first). A sign-in replaces an
// account's secret and config only when it succeeded and the secret was
// stored; a credential that was issued but could not be stored is revoked
// at the server. Token and Exchange go through the broker's chain; the
// agent never refreshes outside it.
//
// # Security
//
// Secrets (refresh tokens, app passwords, client secrets) live in the
// SecretStore and in broker memory only: never in config.toml, a log line,
// an error, an argument list or a child's environment. Rules that follow:
//
//   - Browser opens (OpenURL) never carry a URL on the opener's command
//     line, which every user can read: the URL goes into a 0600
//     trampoline page in a 0700 per-user directory, the opener gets its
//     file:// URL and a minimal environment (openerEnv); ForgetURL deletes
//     the page once the URL was used, or it expires after two minutes.
//   - The agent opens a browser only for a login from a client in the
//     user's graphical session (the tray, the setup page, or on Linux a
//     process with a display); background requests get the URL to show.
//   - The loopback callback of a browser sign-in ignores (400) callbacks
//     without its state, up to 20, then stops: another local process can
//     neither complete nor cheaply abort it. The state is compared in
//     constant time; state, nonce and PKCE verifier are never logged.
//   - Every HTTP client comes from broker.NewHTTPClient: https (loopback
//     http only), no downgrade on redirect, no credential to another host.
//     Server answers over 1 MiB are refused, as are config and CA files
//     that are not regular files of at most 1 MiB (readBounded).
//   - Harden, called first by ncagent run, makes the process non-dumpable
//     (Linux) with RLIMIT_CORE 0, as ssh-agent does.
//   - Sign-ins run on goroutines of their own and recover from a panic
//     (internal/recovery: the stack, never the panic value's text).
//
// What the agent does not defend against: root, and the user's own
// processes beyond what Harden blocks (they can read the keychain
// through the same Secret Service). See docs/security.md.
package agent
