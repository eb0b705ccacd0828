package idptest

import (
	"context"
	"fmt"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// refreshHandler wraps fosite's refresh grant handler, which in v0.49.0
// ignores the scope parameter, to honour down-scoping:
//
// https://www.rfc-editor.org/rfc/rfc6749#section-6: "scope OPTIONAL. The
// scope of the access request as described by Section 3.3. The requested
// scope MUST NOT include any scope not originally granted by the resource
// owner, and if omitted is treated as equal to the scope originally granted
// by the resource owner."
//
// The new refresh token keeps the original scope ("If a new refresh token is
// issued, the refresh token scope MUST be identical to that of the refresh
// token included by the client in the request"); only the access token is
// narrowed. With ignoreScope the wrapper passes through, so the scope
// parameter is ignored the way the Nextcloud oidc app does.
type refreshHandler struct {
	*oauth2.RefreshTokenGrantHandler
	ignoreScope bool
	access      oauth2.AccessTokenStrategy
	refresh     oauth2.RefreshTokenStrategy
	store       *store
	// dead, when set, answers an unknown, used or expired refresh token
	// the way the profile's provider does (see Profile), instead of
	// fosite's reuse detection.
	dead func(expired bool) *fosite.RFC6749Error
}

var _ fosite.TokenEndpointHandler = (*refreshHandler)(nil)

func requestedScopes(req fosite.AccessRequester) []string {
	return fosite.RemoveEmpty(strings.Split(req.GetRequestForm().Get("scope"), " "))
}

// HandleTokenEndpointRequest validates the refresh token and, unless
// ignoreScope, that the requested scope is within the granted one.
func (h *refreshHandler) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if h.CanHandleTokenEndpointRequest(ctx, req) {
		if err := h.deadRefreshError(ctx, req); err != nil {
			return err
		}
	}
	if err := h.RefreshTokenGrantHandler.HandleTokenEndpointRequest(ctx, req); err != nil {
		return err
	}
	if h.ignoreScope {
		return nil
	}
	for _, sc := range requestedScopes(req) {
		if !req.GetGrantedScopes().Has(sc) {
			return fosite.ErrInvalidScope.WithHintf("The scope %q was not originally granted.", sc)
		}
	}
	return nil
}

// PopulateTokenEndpointResponse rotates the tokens and narrows the new
// access token to the requested scope.
func (h *refreshHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if err := h.RefreshTokenGrantHandler.PopulateTokenEndpointResponse(ctx, req, resp); err != nil {
		return err
	}
	want := requestedScopes(req)
	if h.ignoreScope || len(want) == 0 {
		return nil
	}
	sig := h.access.AccessTokenSignature(ctx, resp.GetAccessToken())
	stored, err := h.store.GetAccessTokenSession(ctx, sig, nil)
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("idptest: narrow refreshed access token: %w", err))
	}
	narrowed, ok := stored.Sanitize(nil).(*fosite.Request)
	if !ok {
		return fosite.ErrServerError.WithDebugf("idptest: stored access request is %T", stored)
	}
	narrowed.GrantedScope = fosite.Arguments(want)
	narrowed.RequestedScope = fosite.Arguments(want)
	if err := h.store.CreateAccessTokenSession(ctx, sig, narrowed); err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("idptest: store narrowed access token: %w", err))
	}
	resp.SetScopes(fosite.Arguments(want))
	return nil
}
