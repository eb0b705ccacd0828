package idptest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
)

// Profile makes the server behave like one identity provider people run,
// quirks included. Each quirk below was read in the provider's source and
// is cited there; the zero Profile is strict fosite (RFC 6749/6819
// behaviour with reuse detection that revokes the whole grant).
type Profile string

const (
	// ProfileFosite is fosite as composed by this package: refresh token
	// rotation with reuse detection revoking the grant, scope honoured on
	// refresh (down-scoping), every endpoint published.
	ProfileFosite Profile = ""

	// ProfileNextcloudOIDC is Nextcloud's "oidc" app (OIDC Identity
	// Provider, github.com/H2CK/oidc), as read in release 2.0.9:
	// lib/Controller/OIDCApiController.php (getToken),
	// lib/Util/DiscoveryGenerator.php and appinfo/routes.php:
	//   - endpoints under /index.php/apps/oidc/ (authorize, token,
	//     userinfo, jwks, introspect); the issuer is the Nextcloud base
	//     URL. The discovery document names no revocation_endpoint and no
	//     device_authorization_endpoint (there is no such route or
	//     controller), and grant_types_supported is authorization_code,
	//     implicit, refresh_token: no token exchange.
	//   - one access token per grant: the grant is one AccessToken row
	//     whose access token and hashed code are overwritten on every
	//     refresh (setAccessToken, setHashedCode, update), so the previous
	//     access token stops working at once.
	//   - scope is not read from a refresh request and no token response
	//     carries "scope" (access_token, token_type, expires_in, id_token,
	//     refresh_token, refresh_expires_in).
	//   - a refresh token that is no longer the row's code is not found:
	//     HTTP 400 invalid_grant "Could not find access token for code or
	//     refresh_token." (invalidGrantResponse); the grant itself is not
	//     revoked. An expired one is invalid_grant "Refresh token is
	//     expired.".
	//   - userinfo with an access token that is not the grant's current
	//     one: HTTP 400 invalid_request "Could not find provided bearer
	//     token." (lib/Controller/UserInfoController.php).
	//   - redirect URIs: a registered http://localhost:*/callback accepts
	//     any port for localhost only (lib/Service/RedirectUriService.php);
	//     127.0.0.1 is not registered here.
	ProfileNextcloudOIDC Profile = "nextcloud-oidc"

	// ProfileDex is Dex (github.com/dexidp/dex), as read in
	// server/refreshhandlers.go (getRefreshTokenFromStorage,
	// updateOfflineSession), server/handlers.go (token exchange) and the
	// ID token claims:
	//   - a refresh token that is unknown, rotated away or replaced is
	//     HTTP 400 invalid_request "Refresh token is invalid or has already
	//     been claimed by another client." (newBadRequestError; not
	//     invalid_grant), and an expired one invalid_request "Refresh token
	//     expired."; neither revokes anything.
	//   - one refresh token per user and client (the offline session keeps
	//     Refresh[clientID]): a new sign-in of the same user and client
	//     kills the previous chain.
	//   - token exchange requires the non-RFC connector_id form field;
	//     without it: invalid_request "Requested connector does not
	//     exist.".
	//   - preferred_username and name only with the profile scope, email
	//     only with the email scope; sub is an opaque encoded id.
	//   - a public client without registered redirect URIs accepts any
	//     loopback redirect (localhost, 127.0.0.1, [::1]) on any port.
	ProfileDex Profile = "dex"

	// ProfileHydra is ORY Hydra (fosite inside), as read in fosite's
	// authorize_helper.go (isMatchingAsLoopback, isLoopbackAddress:
	// net.ParseIP(host).IsLoopback()) and access_request_handler.go:
	//   - a loopback redirect URI may vary its port only for the IP
	//     literals 127.0.0.1 and [::1], never for localhost.
	//   - no token exchange: a grant no handler takes is the generic
	//     ErrInvalidRequest ("The request is missing a required parameter,
	//     includes an invalid parameter value, ..."), and
	//     grant_types_supported lacks the token exchange grant.
	//   - the refresh grant ignores scope and answers with the full
	//     granted scope (flow_refresh.go: responder.SetScopes(
	//     requester.GetGrantedScopes())); earlier access tokens stay valid.
	//   - reuse of a rotated refresh token revokes the whole grant.
	ProfileHydra Profile = "hydra"
)

// nextcloudPrefix is where the Nextcloud oidc app serves its endpoints.
const nextcloudPrefix = "/index.php/apps/oidc"

// behaviour is a Profile spelled out as switches.
type behaviour struct {
	prefix               string // endpoint path prefix
	ignoreScope          bool   // refresh ignores scope (no down-scoping)
	revokeAccessOnRotate bool   // a refresh kills earlier access tokens of the grant
	omitScope            bool   // no "scope" in token responses
	revocation           bool   // RFC 7009 endpoint published and served
	introspection        bool
	exchange             bool // RFC 8693 grant offered
	localhostAnyPort     bool // http://localhost:PORT matches a registered http://localhost
	redirectURIs         []string
	oneRefreshPerClient  bool // a new code exchange kills the user+client's older grants
	connectorID          bool // token exchange requires connector_id
	deadRefresh          func(expired bool) *fosite.RFC6749Error
}

func (p Profile) behaviour(opts Options) behaviour {
	b := behaviour{
		ignoreScope:          opts.IgnoreScopeOnRefresh,
		revokeAccessOnRotate: opts.IgnoreScopeOnRefresh,
		revocation:           true,
		introspection:        true,
		exchange:             !opts.NoTokenExchange,
		localhostAnyPort:     true,
		redirectURIs:         RedirectURIs,
	}
	switch p {
	case ProfileNextcloudOIDC:
		b.prefix = nextcloudPrefix
		b.ignoreScope, b.revokeAccessOnRotate, b.omitScope = true, true, true
		b.revocation, b.exchange = false, false
		b.redirectURIs = []string{"http://localhost/callback"}
		b.deadRefresh = func(expired bool) *fosite.RFC6749Error {
			if expired {
				return &fosite.RFC6749Error{ErrorField: "invalid_grant", DescriptionField: "Refresh token is expired.", CodeField: http.StatusBadRequest}
			}
			return &fosite.RFC6749Error{ErrorField: "invalid_grant", DescriptionField: NextcloudDeadRefresh, CodeField: http.StatusBadRequest}
		}
	case ProfileDex:
		b.oneRefreshPerClient, b.connectorID = true, true
		b.deadRefresh = func(expired bool) *fosite.RFC6749Error {
			if expired {
				return &fosite.RFC6749Error{ErrorField: "invalid_request", DescriptionField: "Refresh token expired.", CodeField: http.StatusBadRequest}
			}
			return &fosite.RFC6749Error{ErrorField: "invalid_request", DescriptionField: DexDeadRefresh, CodeField: http.StatusBadRequest}
		}
	case ProfileHydra:
		b.ignoreScope = true
		b.exchange = false
		b.localhostAnyPort = false
	}
	return b
}

// NextcloudDeadRefresh is the oidc app's error_description for a refresh
// token that is not (any more) the grant's code (OIDCApiController.php).
const NextcloudDeadRefresh = "Could not find access token for code or refresh_token."

// DexDeadRefresh is Dex's error_description for a refresh token it no
// longer knows (refreshhandlers.go, getRefreshTokenFromStorage).
const DexDeadRefresh = "Refresh token is invalid or has already been claimed by another client."

// path returns the path of endpoint name ("token", "authorize", ...).
func (s *Server) path(name string) string { return s.beh.prefix + "/" + name }

// endpoint returns the URL of endpoint name.
func (s *Server) endpoint(name string) string { return s.URL + s.path(name) }

// deadRefreshError answers a refresh request whose refresh token is
// unknown, used or expired the way the profile's provider does, without
// fosite's reuse detection (which would revoke the grant). It returns nil
// when the token is live or the profile has no such rule.
func (h *refreshHandler) deadRefreshError(ctx context.Context, req fosite.AccessRequester) error {
	if h.dead == nil {
		return nil
	}
	sig := h.refresh.RefreshTokenSignature(ctx, req.GetRequestForm().Get("refresh_token"))
	ar, err := h.store.GetRefreshTokenSession(ctx, sig, newSession("", "", ""))
	switch {
	case errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, fosite.ErrNotFound):
		return h.dead(false)
	case err != nil:
		return nil
	}
	if exp := ar.GetSession().GetExpiresAt(fosite.RefreshToken); !exp.IsZero() && exp.Before(time.Now().UTC()) {
		return h.dead(true)
	}
	return nil
}

// killOlderGrants ends every other grant of subject for clientID, as Dex's
// one offline session per user and client does when a new sign-in
// replaces Refresh[clientID]. Called with tokenMu held.
func (s *Server) killOlderGrants(ctx context.Context, clientID, subject, keep string) {
	s.mu.Lock()
	key := clientID + "\x00" + subject
	old := s.grantsBy[key]
	s.grantsBy[key] = []string{keep}
	s.mu.Unlock()
	for _, id := range old {
		if id != keep {
			_ = s.store.RevokeRefreshToken(ctx, id)
		}
	}
}
