package agent

import "testing"

func TestCredentialVar(t *testing.T) {
	for name, want := range map[string]bool{
		"NEXTCLOUD_PASSWORD": true, "NEXTCLOUD_APP_PASSWORD": true, "NEXTCLOUD_ACCESS_TOKEN": true,
		"NEXTCLOUD_HOST": true, "nextcloud_username": true, // Windows names are any case
		"NCAGENT_SESSION": true, "NCAGENT_SESSION_TOKEN": true, "NCAGENT_PROXY_AUTH": true,
		"GITHUB_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true, "PGPASSWORD": true, "MY_API_KEY": true,
		"NCAGENT_CONFIG": false, "NCAGENT_SOCKET": false, "NCAGENT_KEYRING_SERVICE": false, "NCAGENT_OPENER_ENV": false,
		"DBUS_SESSION_BUS_ADDRESS": false, "XDG_SESSION_TYPE": false, "XAUTHORITY": false, "SSH_AUTH_SOCK": false,
		"HOME": false, "PATH": false,
	} {
		if got := CredentialVar(name); got != want {
			t.Errorf("CredentialVar(%q) = %v, want %v", name, got, want)
		}
	}
}
