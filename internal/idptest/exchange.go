package idptest

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	jwtv5 "github.com/golang-jwt/jwt/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// RFC 8693 identifiers (https://www.rfc-editor.org/rfc/rfc8693#section-3).
const (
	// GrantTypeTokenExchange is the token exchange grant type.
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the token type of an access token this server issued.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// TokenTypeJWT is the token type of a JWT signed by this server's key.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
)

// exchangeHandler is the RFC 8693 token exchange grant as a fosite token
// endpoint handler. The token it issues is an ordinary fosite access token
// of a new grant: introspection, revocation and expiry treat it like any
// other. It has no refresh token.
type exchangeHandler struct {
	provider  fosite.OAuth2Provider
	access    oauth2.AccessTokenStrategy
	store     *store
	scopes    fosite.ScopeStrategy
	audiences fosite.AudienceMatchingStrategy
	lifespan  time.Duration
	issuer    string
	kid       string
	key       *rsa.PublicKey
	// subjectErr is the error code for an unacceptable subject or actor token.
	subjectErr string
	// connectorID requires Dex's non-RFC connector_id form field.
	connectorID bool
}

var _ fosite.TokenEndpointHandler = (*exchangeHandler)(nil)

// CanSkipClientAuth is false: the client authenticates with its registered
// method (https://www.rfc-editor.org/rfc/rfc8693#section-2.1); a public
// client sends its client_id.
func (h *exchangeHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// CanHandleTokenEndpointRequest reports whether the grant type is token exchange.
func (h *exchangeHandler) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne(GrantTypeTokenExchange)
}

// subject is what an accepted subject or actor token says.
type subject struct {
	sub    string
	scopes []string
}

func (h *exchangeHandler) badToken(hint string) error {
	// https://www.rfc-editor.org/rfc/rfc8693#section-2.2.2: "If the request
	// itself is not valid or if either the subject_token or actor_token are
	// invalid for any reason, or are unacceptable based on policy, the
	// authorization server MUST construct an error response [...]". The RFC
	// names invalid_request; many IdPs send invalid_grant, the default here.
	return &fosite.RFC6749Error{
		ErrorField:       h.subjectErr,
		DescriptionField: "The subject or actor token is invalid.",
		HintField:        hint,
		CodeField:        http.StatusBadRequest,
	}
}

// validate checks a subject or actor token of the given RFC 8693 type.
func (h *exchangeHandler) validate(ctx context.Context, token, typ, param string) (subject, error) {
	switch typ {
	case TokenTypeAccessToken:
		use, ar, err := h.provider.IntrospectToken(ctx, token, fosite.AccessToken, newSession("", h.issuer, h.kid))
		if err != nil || use != fosite.AccessToken {
			return subject{}, h.badToken("The " + param + " is not an active access token of this server.")
		}
		return subject{sub: ar.GetSession().GetSubject(), scopes: ar.GetGrantedScopes()}, nil
	case TokenTypeJWT:
		claims := jwtv5.MapClaims{}
		_, err := jwtv5.ParseWithClaims(token, claims, func(*jwtv5.Token) (any, error) { return h.key, nil },
			jwtv5.WithValidMethods([]string{"RS256"}), jwtv5.WithIssuer(h.issuer), jwtv5.WithExpirationRequired())
		if err != nil {
			return subject{}, h.badToken("The " + param + " is not a valid JWT of this issuer.")
		}
		sub, _ := claims["sub"].(string)
		if sub == "" {
			return subject{}, h.badToken("The " + param + " has no sub claim.")
		}
		return subject{sub: sub, scopes: jwtScopes(claims)}, nil
	case "":
		return subject{}, fosite.ErrInvalidRequest.WithHintf("The %s_type parameter is missing.", param)
	default:
		return subject{}, fosite.ErrInvalidRequest.WithHintf("The %s_type %q is not supported.", param, typ)
	}
}

// jwtScopes reads "scope" (space-separated, RFC 8693 §4.2) or "scp" (array
// or string) from a JWT. A JWT with neither carries no scope.
func jwtScopes(c jwtv5.MapClaims) []string {
	if s, ok := c["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch v := c["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// HandleTokenEndpointRequest validates the exchange request
// (https://www.rfc-editor.org/rfc/rfc8693#section-2.1) and sets up the
// grant of the new token.
func (h *exchangeHandler) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	client := req.GetClient()
	if !client.GetGrantTypes().Has(GrantTypeTokenExchange) {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use token exchange.")
	}
	form := req.GetRequestForm()
	if h.connectorID && form.Get("connector_id") == "" {
		// Dex, server/handlers.go handleTokenExchange: connID :=
		// q.Get("connector_id") // REQUIRED, not in RFC; an unknown or
		// empty one fails getConnector.
		return &fosite.RFC6749Error{ErrorField: "invalid_request", DescriptionField: "Requested connector does not exist.", CodeField: http.StatusBadRequest}
	}
	if form.Get("subject_token") == "" {
		return fosite.ErrInvalidRequest.WithHint("The subject_token parameter is missing.")
	}
	// "requested_token_type OPTIONAL": this server issues access tokens only.
	if rt := form.Get("requested_token_type"); rt != "" && rt != TokenTypeAccessToken {
		return fosite.ErrInvalidRequest.WithHintf("The requested_token_type %q is not supported.", rt)
	}
	subj, err := h.validate(ctx, form.Get("subject_token"), form.Get("subject_token_type"), "subject_token")
	if err != nil {
		return err
	}
	sess := newSession(subj.sub, h.issuer, h.kid)
	// "actor_token OPTIONAL [...] actor_token_type [...] REQUIRED when the
	// actor_token parameter is present in the request but MUST NOT be
	// included otherwise."
	if actor := form.Get("actor_token"); actor != "" {
		act, err := h.validate(ctx, actor, form.Get("actor_token_type"), "actor_token")
		if err != nil {
			return err
		}
		// https://www.rfc-editor.org/rfc/rfc8693#section-4.1: the "act"
		// claim identifies the acting party to whom authority was delegated.
		sess.GetExtraClaims()["act"] = map[string]any{"sub": act.sub}
	} else if form.Get("actor_token_type") != "" {
		return fosite.ErrInvalidRequest.WithHint("The actor_token_type parameter is present without actor_token.")
	}

	scopes := req.GetRequestedScopes()
	if len(scopes) == 0 {
		for _, sc := range subj.scopes {
			if h.scopes(client.GetScopes(), sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	for _, sc := range scopes {
		if !slices.Contains(subj.scopes, sc) {
			return fosite.ErrInvalidScope.WithHintf("The scope %q is not within the subject token's scope.", sc)
		}
		if !h.scopes(client.GetScopes(), sc) {
			return fosite.ErrInvalidScope.WithHintf("The client may not request scope %q.", sc)
		}
		req.GrantScope(sc)
	}
	if err := h.audiences(client.GetAudience(), req.GetRequestedAudience()); err != nil {
		// "invalid_target: The authorization server is unwilling or unable
		// to issue a token for any target service indicated by the resource
		// or audience parameters." (RFC 8693 §2.2.2)
		target := &fosite.RFC6749Error{
			ErrorField:       "invalid_target",
			DescriptionField: "The requested audience is not allowed.",
			CodeField:        http.StatusBadRequest,
		}
		if e := new(fosite.RFC6749Error); errors.As(err, &e) {
			target.HintField = e.HintField
		}
		return target
	}
	for _, aud := range req.GetRequestedAudience() {
		req.GrantAudience(aud)
	}
	sess.SetExpiresAt(fosite.AccessToken, time.Now().UTC().Add(h.lifespan).Round(time.Second))
	req.SetSession(sess)
	return nil
}

// PopulateTokenEndpointResponse issues and stores the access token
// (https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1).
func (h *exchangeHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	token, sig, err := h.access.GenerateAccessToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if err := h.store.CreateAccessTokenSession(ctx, sig, req.Sanitize(nil)); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	resp.SetAccessToken(token)
	resp.SetTokenType("Bearer")
	resp.SetExpiresIn(time.Until(req.GetSession().GetExpiresAt(fosite.AccessToken)).Round(time.Second))
	resp.SetScopes(req.GetGrantedScopes())
	resp.SetExtra("issued_token_type", TokenTypeAccessToken)
	return nil
}

// exchangeHandler returns the server's RFC 8693 handler.
func (s *Server) exchangeHandler(cfg *fosite.Config) *exchangeHandler {
	return &exchangeHandler{
		provider:    s.provider,
		access:      s.access,
		store:       s.store,
		scopes:      cfg.ScopeStrategy,
		audiences:   cfg.AudienceMatchingStrategy,
		lifespan:    s.opts.AccessTokenLifespan,
		issuer:      s.URL,
		kid:         s.kid,
		key:         &s.key.PublicKey,
		subjectErr:  s.opts.SubjectTokenError,
		connectorID: s.beh.connectorID,
	}
}
