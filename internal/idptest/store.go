package idptest

import (
	"context"
	"net/url"
	"slices"
	"sync"

	"github.com/ory/fosite"
	"github.com/ory/fosite/storage"
)

// store is fosite's MemoryStore with the gaps that matter to ncagent filled:
//
//   - MemoryStore remembers only the latest access token signature of a grant
//     (request ID), so revoking a grant forgot every older access token. store
//     remembers all of them, so reuse detection and RFC 7009 revocation end
//     the whole token family.
//   - MemoryStore.RotateRefreshToken also deletes the grant's latest access
//     token. Most IdPs (Keycloak, Hydra's default) keep earlier access tokens
//     valid until they expire; store does the same unless
//     revokeAccessOnRotate is set (the Nextcloud oidc app behaviour).
//   - fosite matches loopback redirect URIs on any port only for IP literals;
//     store extends that to "localhost" (see GetClient).
//
// It is safe for concurrent use.
type store struct {
	*storage.MemoryStore

	revokeAccessOnRotate bool
	localhostAnyPort     bool

	mu       sync.Mutex          // guards accessBy
	accessBy map[string][]string // request ID → signatures of every access token issued for it
}

func newStore(b behaviour) *store {
	return &store{
		MemoryStore:          storage.NewMemoryStore(),
		revokeAccessOnRotate: b.revokeAccessOnRotate,
		localhostAnyPort:     b.localhostAnyPort,
		accessBy:             make(map[string][]string),
	}
}

// CreateAccessTokenSession stores the session and remembers its signature
// under the grant's request ID.
func (s *store) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	if err := s.MemoryStore.CreateAccessTokenSession(ctx, signature, req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.accessBy[req.GetID()], signature) {
		s.accessBy[req.GetID()] = append(s.accessBy[req.GetID()], signature)
	}
	return nil
}

// RevokeAccessToken deletes every access token ever issued for the grant.
func (s *store) RevokeAccessToken(ctx context.Context, requestID string) error {
	s.mu.Lock()
	sigs := s.accessBy[requestID]
	delete(s.accessBy, requestID)
	s.mu.Unlock()
	for _, sig := range sigs {
		if err := s.MemoryStore.DeleteAccessTokenSession(ctx, sig); err != nil {
			return err
		}
	}
	return nil
}

// RotateRefreshToken marks the grant's current refresh token used. A later
// presentation of it is reuse, which fosite's refresh handler answers with
// invalid_grant after revoking the grant
// (https://www.rfc-editor.org/rfc/rfc6819#section-5.2.2.3).
func (s *store) RotateRefreshToken(ctx context.Context, requestID, refreshSignature string) error {
	if err := s.MemoryStore.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	if s.revokeAccessOnRotate {
		return s.RevokeAccessToken(ctx, requestID)
	}
	return nil
}

// redirectKey is the context key under which the authorization endpoint
// passes the requested redirect_uri to GetClient.
type redirectKey struct{}

// GetClient returns the client. During an authorization request whose
// redirect_uri is http://localhost:PORT/path and the client registered
// http://localhost/path, the returned copy also lists the requested URI.
//
// https://www.rfc-editor.org/rfc/rfc8252#section-7.3: "The authorization
// server MUST allow any port to be specified at the time of the request for
// loopback IP redirect URIs, to accommodate clients that obtain an available
// ephemeral port from the operating system at the time of the request."
// fosite already does this for 127.0.0.1 and [::1].
func (s *store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.MemoryStore.GetClient(ctx, id)
	if err != nil {
		return nil, err
	}
	requested, _ := ctx.Value(redirectKey{}).(string)
	oc, ok := c.(*fosite.DefaultOpenIDConnectClient)
	if requested == "" || !ok || !s.localhostAnyPort || !localhostMatch(requested, oc.RedirectURIs) {
		return c, nil
	}
	dc := *oc.DefaultClient
	dc.RedirectURIs = append(slices.Clone(dc.RedirectURIs), requested)
	cp := *oc
	cp.DefaultClient = &dc
	return &cp, nil
}

// localhostMatch reports whether requested is an http://localhost URI that
// equals one of registered except for the port.
func localhostMatch(requested string, registered []string) bool {
	req, err := url.Parse(requested)
	if err != nil || req.Scheme != "http" || req.Hostname() != "localhost" || req.User != nil || req.Fragment != "" {
		return false
	}
	for _, r := range registered {
		reg, err := url.Parse(r)
		if err != nil {
			continue
		}
		if reg.Scheme == "http" && reg.Hostname() == "localhost" && reg.Path == req.Path && reg.RawQuery == req.RawQuery {
			return true
		}
	}
	return false
}
