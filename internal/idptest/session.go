package idptest

import (
	"maps"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// session is the fosite session of every grant: an OpenID Connect session
// plus extra claims (the RFC 8693 "act" claim) that introspection reports.
type session struct {
	*openid.DefaultSession
	Extra map[string]any
}

var (
	_ openid.Session            = (*session)(nil)
	_ fosite.ExtraClaimsSession = (*session)(nil)
)

// newSession returns a session for subject whose ID tokens carry kid and
// issuer. An empty subject makes an empty session for fosite to fill from
// storage.
func newSession(subject, issuer, kid string) *session {
	now := time.Now().UTC().Truncate(time.Second)
	return &session{
		DefaultSession: &openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				Issuer:      issuer,
				Subject:     subject,
				AuthTime:    now,
				RequestedAt: now,
			},
			Headers: &jwt.Headers{Extra: map[string]any{"kid": kid}},
			Subject: subject,
		},
	}
}

// GetExtraClaims implements fosite.ExtraClaimsSession.
func (s *session) GetExtraClaims() map[string]any {
	if s.Extra == nil {
		s.Extra = make(map[string]any)
	}
	return s.Extra
}

// Clone implements fosite.Session, keeping the concrete type.
func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := &session{Extra: maps.Clone(s.Extra)}
	if s.DefaultSession != nil {
		c.DefaultSession = s.DefaultSession.Clone().(*openid.DefaultSession)
	}
	return c
}
