package agent

// signedInTo names where an account signs in, for messages: its Nextcloud
// server, or its issuer for an account that has only one.
func signedInTo(ac *AccountConfig) string {
	if ac.Server != "" {
		return ac.Server
	}
	return ac.Issuer
}
