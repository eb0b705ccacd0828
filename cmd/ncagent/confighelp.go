package main

import (
	"context"
	"fmt"
)

func init() {
	register(verb{name: "config", summary: "print where the config and state files are (help config: every key)", run: runConfig})
}

// configHelp documents every key of config.toml: it is the text of
// ncagent help config and of the CONFIGURATION section of the man page.
const configHelp = `Print the paths of the two files the agent reads. ncagent help config (this
text) documents every key.

config.toml is yours: ncagent reads it and never writes it. Its path is
$NCAGENT_CONFIG, or ncagent/config.toml in the user config dir
(~/.config/ncagent/config.toml on Linux). What sign-in and ncagent default
record goes to ncagent's own state file: $NCAGENT_STATE, or
$XDG_STATE_HOME/ncagent/accounts.toml (~/.local/state/...), or, with
NCAGENT_CONFIG set, ncagent-state.toml beside that file. The two files have
the same keys and are merged key by key: a value you set in config.toml wins.
A config.toml written by an older ncagent keeps working as it is. A running
agent reloads both when they change, and on SIGHUP, and applies the change
at once (accounts, the default, log_level) and says so in its log; store and
identity_file take effect when the agent restarts (ncagent stop). Secrets
are never kept in either file: a key that looks like one (password,
refresh_token, client_secret...) is refused.

[agent]
  default_account   account for commands that name none (default: the only
                    account; ncagent default NAME records one)
  log_level         debug, info, warn or error (default info;
                    NCAGENT_LOG_LEVEL and ncagent run --log-level win)
  store             where secrets are kept: "keychain" (the OS keychain only),
                    "file" (the age-encrypted file store, opened with
                    ncagent unlock), or unset (default): the keychain, or the
                    file store where no keychain can be reached and you run
                    ncagent unlock. The file: $NCAGENT_FILE_STORE, or
                    $XDG_STATE_HOME/ncagent/secrets.age, or, with
                    NCAGENT_CONFIG set, ncagent-secrets/secrets.age beside it
  identity_file     absolute path (or ~/...) to an age identity file (age
                    plugins too) the file store is encrypted to, instead of
                    a passphrase (default: a passphrase)

[accounts.NAME]     NAME: 1 to 64 letters, digits, '-', '_', '.'
  kind              "oidc" or "app-password" (required)
  server            Nextcloud base URL, https:// (http only for localhost)
  issuer            OpenID Connect issuer (default: server)
  client_id         OAuth client id registered at the issuer (oidc: required)
  client_auth       none (default), client_secret_post or client_secret_basic;
                    the secret is given to ncagent login --client-secret-file
                    and kept in the keychain
  scopes            scopes to sign in with and to ask for by default (oidc;
                    openid and offline_access are always added)
  audience          default audience of tokens (default: none)
  user              login name (filled in by sign-in)
  display_name      name shown in status and the tray (filled in by sign-in)
  ca_file           absolute path (or ~/...) to a PEM bundle of extra CAs
  keepalive         refresh interval when the IdP sends no refresh_expires_in
                    ("10m" default; at least "10s"; "off" disables it)
  early_refresh     refresh cached tokens this long before expiry (default "30s")
  accepted_audiences  audiences a JWT subject token may carry (default:
                    mcp-server and the client id)
  allowed_algs      JWS algorithms of subject tokens (default: RS256, RS384,
                    RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA)
  cache_exchanged   cache exchanged tokens (default false)
  exchange_fallback_refresh  answer a refused exchange with a refresh-grant
                    token (default false; off is safer)
  redirect_host     loopback host of the browser sign-in redirect URI:
                    "localhost" or "127.0.0.1" (default: localhost on the
                    Nextcloud oidc app, 127.0.0.1 elsewhere, RFC 8252 8.3);
                    set what your client registration allows
  tokens_per_grant  "one": keep a single live access token per account,
                    replaced on every refresh, for providers whose refresh
                    kills the previous token; "many": one per scope set and
                    audience (default: one on the Nextcloud oidc app,
                    many elsewhere)
  exchange_params   extra form fields of token exchange requests (RFC 8693),
                    e.g. Dex's connector_id; fields ncagent sets itself are
                    refused (default: none)

[accounts.NAME.endpoints]  override discovery (default: from the issuer's
  authorization, token, revocation, jwks, device_authorization, userinfo
                    .well-known/openid-configuration)

Example config.toml:

  [agent]
  default_account = "work"

  [accounts.work]
  kind      = "oidc"
  server    = "https://cloud.example.com"
  client_id = "ncagent"
  scopes    = ["openid", "offline_access", "profile", "files"]

  [accounts.home]
  kind   = "app-password"
  server = "https://nc.example.org"
  keepalive = "off"

  [accounts.dex]
  kind             = "oidc"
  server           = "https://files.example.net"
  issuer           = "https://dex.example.net"
  client_id        = "ncagent"
  redirect_host    = "127.0.0.1"
  tokens_per_grant = "one"
  exchange_params  = { connector_id = "ldap" }

An account you only tune (keepalive, ca_file...) needs just those keys in
config.toml; sign-in keeps kind, server, user... in the state file.`

func runConfig(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "config", "", configHelp)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "config takes no arguments: run ncagent help config")
		return exitUsage
	}
	cfgPath, statePath, err := filePaths(e)
	if err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "config: %s\nstate:  %s\n", cfgPath, statePath)
	if _, err := loadFiles(e); err != nil {
		errorf(e, "%v", err)
		return exitError
	}
	return exitOK
}
