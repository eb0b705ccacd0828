package main

import "strings"

// agentEnv is the environment of an agent a client starts on demand: the
// client's, without credentials. The client may be the child of
// ncagent exec, whose environment holds NEXTCLOUD_PASSWORD or
// NEXTCLOUD_ACCESS_TOKEN and the exec session's NCAGENT_* values; an
// agent inheriting them would keep them for its whole life and hand them
// to every process it starts. The agent reads no NEXTCLOUD_* variable, so
// all of them go; of NCAGENT_*, those that name a secret or a session go,
// and the settings (NCAGENT_CONFIG, NCAGENT_KEYRING_SERVICE, …) stay.
func agentEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		name := strings.ToUpper(k)
		if strings.HasPrefix(name, "NEXTCLOUD_") || strings.HasPrefix(name, "NCAGENT_") && secretName(name) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// secretName reports whether a variable name says it holds a secret or a
// session value.
func secretName(name string) bool {
	for _, w := range []string{"SESSION", "TOKEN", "PASSWORD", "SECRET", "CREDENTIAL", "AUTH", "COOKIE"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
