package agent

// Defaults of the OpenID Connect sign-ins that depend on the provider:
// the loopback redirect host, the scopes asked for and the user name.

import (
	"fmt"
	"slices"

	"github.com/ncagent/ncagent/broker"
)

// Redirect hosts of the browser sign-in.
const (
	RedirectLocalhost = "localhost"
	RedirectLoopback  = "127.0.0.1"
)

// redirectHost returns the loopback host of the redirect URI: the
// configured one, else "localhost" on the Nextcloud oidc app (whose
// clients register http://localhost:*/callback, the only form it accepts
// with a wildcard port) and the IP literal elsewhere:
// https://www.rfc-editor.org/rfc/rfc8252#section-8.3: "While redirect URIs
// using localhost (i.e., "http://localhost:{port}/{path}") function
// similarly to loopback IP redirects described in Section 7.3, the use of
// localhost is NOT RECOMMENDED. Specifying a redirect URI with the loopback
// IP literal rather than localhost avoids inadvertently listening on
// network interfaces other than the loopback interface." Hydra (fosite's
// isMatchingAsLoopback) lets the port vary only for IP literals.
func redirectHost(configured string, md broker.Metadata) string {
	if configured != "" {
		return configured
	}
	return DefaultRedirectHost(md.AuthorizationEndpoint)
}

// DefaultRedirectHost is the redirect host used when none is configured,
// for a provider whose authorization endpoint is authEndpoint.
func DefaultRedirectHost(authEndpoint string) string {
	if broker.IsNextcloudOIDC(authEndpoint) {
		return RedirectLocalhost
	}
	return RedirectLoopback
}

// redirectAdvice says what the provider must accept, for the timeout
// message of a browser sign-in that redirected to host.
func redirectAdvice(r signInRequest, host string) string {
	other := RedirectLocalhost
	if host == RedirectLocalhost {
		other = RedirectLoopback
	}
	return fmt.Sprintf("the identity provider must accept this redirect URI, on any port, for client %q; "+
		"if it accepts only %s, run ncagent login %s --redirect-host %s", r.ClientID, other, r.Account, other)
}

// defaultSignInScopes are asked for on every OpenID Connect sign-in, with
// the account's scopes: openid for the ID token, profile and email so the
// user name is readable (Dex puts preferred_username in the ID token only
// with profile), offline_access for the refresh token.
var defaultSignInScopes = []string{"openid", "profile", "email"}

// signInScopes returns the scopes a sign-in asks for: openid, profile,
// email, the account's scopes, then offline_access, without duplicates.
// profile and email are left out when the discovery document lists
// scopes_supported without them ("scopes_supported RECOMMENDED. JSON array
// containing a list of the OAuth 2.0 scope values that this server
// supports", https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata),
// since asking for an unknown scope can fail the whole sign-in.
func signInScopes(requested []string, md broker.Metadata) []string {
	out := make([]string, 0, len(requested)+4)
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range defaultSignInScopes {
		if s == "openid" || len(md.ScopesSupported) == 0 || slices.Contains(md.ScopesSupported, s) {
			add(s)
		}
	}
	for _, s := range requested {
		add(s)
	}
	add("offline_access")
	return out
}

// userName is the name an account is known by: preferred_username, else
// email, else the subject (opaque on Dex and many others).
func userName(c broker.IDClaims) string {
	switch {
	case c.PreferredUsername != "":
		return c.PreferredUsername
	case c.Email != "":
		return c.Email
	}
	return c.Subject
}
