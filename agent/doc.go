// Package agent is the ncagent daemon: config and accounts, the keychain
// store, sign-in flows, account state and lifecycle.
package agent
