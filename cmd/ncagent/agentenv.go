package main

import (
	"strings"

	"github.com/ncagent/ncagent/agent"
)

// agentEnv is the environment of an agent a client starts on demand: the
// client's, without credentials. The client may be the child of
// ncagent exec, whose environment holds NEXTCLOUD_PASSWORD or
// NEXTCLOUD_ACCESS_TOKEN and the exec session's NCAGENT_* values; an
// agent inheriting them would keep them for its whole life and hand them
// to every process it starts. Every name agent.CredentialVar matches
// goes (all NEXTCLOUD_*, the session values of NCAGENT_*, any *TOKEN*,
// *SECRET*, …); the settings (NCAGENT_CONFIG, NCAGENT_KEYRING_SERVICE, …)
// stay.
func agentEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if agent.CredentialVar(k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
