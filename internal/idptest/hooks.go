package idptest

import (
	"net/http"
	"time"

	"github.com/ory/fosite"
)

// Calls returns how many token endpoint requests with this grant_type the
// server received since the last ResetCalls, counted on arrival: requests
// a Fault hook answered count too.
func (s *Server) Calls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[grantType]
}

// Revocations returns how many revocation requests arrived.
func (s *Server) Revocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revocations
}

// DiscoveryFetches returns how many discovery documents were requested.
func (s *Server) DiscoveryFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discoveries
}

// JWKSFetches returns how many times the JWKS was requested.
func (s *Server) JWKSFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksFetches
}

// Authorizations returns how many authorization requests arrived.
func (s *Server) Authorizations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authorizations
}

// ResetCalls sets every counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
	s.revocations, s.discoveries, s.jwksFetches, s.authorizations = 0, 0, 0, 0
}

// DenyNext makes the next valid authorization request fail: the user agent
// is redirected to the client with error=errCode ("access_denied" when
// empty), the state and iss.
func (s *Server) DenyNext(errCode string) {
	if errCode == "" {
		errCode = "access_denied"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyNext = &fosite.RFC6749Error{
		ErrorField:       errCode,
		DescriptionField: "The resource owner or authorization server denied the request.",
		CodeField:        http.StatusForbidden,
	}
}

// SetIssParam makes authorization responses, from now on, carry iss=v
// instead of the issuer; an empty v leaves iss out. ResetIssParam undoes it.
func (s *Server) SetIssParam(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issParam = &v
}

// ResetIssParam makes authorization responses carry the issuer again.
func (s *Server) ResetIssParam() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issParam = nil
}

// SetNonceOverride makes ID tokens of authorizations made from now on
// carry nonce v instead of the requested one; an empty v leaves the claim
// out. fosite refuses a non-empty nonce shorter than 8 characters.
// ResetNonce undoes it.
func (s *Server) SetNonceOverride(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonce = &v
}

// ResetNonce makes ID tokens carry the requested nonce again.
func (s *Server) ResetNonce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonce = nil
}

// Fault installs fn in front of every endpoint: when fn returns true it
// has answered the request and the server does nothing more. The request's
// form is already parsed (r.PostForm) for token requests. A nil fn removes
// the hook.
func (s *Server) Fault(fn func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = fn
}

// SetLatency delays every later request by d before it is served.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// EditDiscovery installs fn to edit the discovery document before it is
// served, e.g. delete(doc, "revocation_endpoint"). A nil fn removes it.
func (s *Server) EditDiscovery(fn func(doc map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editDiscovery = fn
}

// SetAnswerDelay delays the answer of every later refresh_token grant by
// d after the server processed it: the refresh token is rotated at once
// (and a reuse detected at once), but the client sees the answer d later,
// like a provider whose reply is slow after it committed. Other token
// requests are served meanwhile. Zero removes the delay.
func (s *Server) SetAnswerDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answerDelay = d
}

// delayAnswer applies SetAnswerDelay to a processed refresh grant. It runs
// after the response is composed and the grant committed, before the
// response is flushed: it releases tokenMu first, so the delay is the
// answer's, not the server's.
func (s *Server) delayAnswer(r *http.Request) {
	s.mu.Lock()
	d := s.answerDelay
	s.mu.Unlock()
	if d <= 0 || r.PostForm.Get("grant_type") != "refresh_token" {
		return
	}
	s.tokenMu.Unlock()
	defer s.tokenMu.Lock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}
