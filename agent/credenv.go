package agent

import "strings"

// CredentialVar reports whether an environment variable's name (any case)
// may hold a credential, so that it is kept out of every environment
// ncagent hands on: a browser opener's and an agent's started on demand.
// It is true for
//   - every NEXTCLOUD_* name: ncagent exec puts the app password or access
//     token there (NEXTCLOUD_PASSWORD, NEXTCLOUD_APP_PASSWORD,
//     NEXTCLOUD_ACCESS_TOKEN), and the agent reads none of them;
//   - an NCAGENT_* name that says session or auth: the values of an exec
//     session (NCAGENT_SESSION, NCAGENT_PROXY_AUTH), not the settings
//     (NCAGENT_CONFIG, NCAGENT_SOCKET, NCAGENT_KEYRING_SERVICE);
//   - any name that says it holds a secret (GITHUB_TOKEN,
//     AWS_SECRET_ACCESS_KEY, *PASSWORD*, *COOKIE*, …).
//
// SESSION and AUTH alone do not count outside NCAGENT_*: a desktop needs
// DBUS_SESSION_BUS_ADDRESS, XDG_SESSION_TYPE and XAUTHORITY.
func CredentialVar(name string) bool {
	name = strings.ToUpper(name)
	if strings.HasPrefix(name, "NEXTCLOUD_") {
		return true
	}
	if strings.HasPrefix(name, "NCAGENT_") && containsAny(name, "SESSION", "AUTH") {
		return true
	}
	return containsAny(name, "TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "SESSION_KEY", "API_KEY", "COOKIE")
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
