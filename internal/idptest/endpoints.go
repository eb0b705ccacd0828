package idptest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// handleDiscovery serves OpenID Connect discovery
// (https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig).
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	grants := []string{"authorization_code", "refresh_token"}
	if s.beh.exchange {
		grants = append(grants, GrantTypeTokenExchange)
	}
	if s.opts.Profile == ProfileNextcloudOIDC {
		// lib/Util/DiscoveryGenerator.php (2.0.9): $grantTypesSupported.
		grants = []string{"authorization_code", "implicit", "refresh_token"}
	}
	doc := map[string]any{
		"issuer":                                        s.URL,
		"authorization_endpoint":                        s.endpoint("authorize"),
		"token_endpoint":                                s.endpoint("token"),
		"userinfo_endpoint":                             s.endpoint("userinfo"),
		"jwks_uri":                                      s.endpoint("jwks"),
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{"RS256"},
		"scopes_supported":                              s.opts.Scopes,
		"grant_types_supported":                         grants,
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         []string{"none", "client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":    []string{"none", "client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		// https://www.rfc-editor.org/rfc/rfc9207#section-3
		"authorization_response_iss_parameter_supported": true,
	}
	if s.beh.revocation {
		doc["revocation_endpoint"] = s.endpoint("revoke")
	} else {
		delete(doc, "revocation_endpoint_auth_methods_supported")
	}
	if s.beh.introspection {
		doc["introspection_endpoint"] = s.endpoint("introspect")
	} else {
		delete(doc, "introspection_endpoint_auth_methods_supported")
	}
	s.mu.Lock()
	edit := s.editDiscovery
	s.mu.Unlock()
	if edit != nil {
		edit(doc)
	}
	writeJSON(w, doc)
}

// handleJWKS serves the public signing key (https://www.rfc-editor.org/rfc/rfc7517).
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	pub := s.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"use": "sig",
		"alg": "RS256",
		"kid": s.kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// handleAuthorize approves every valid authorization request for
// Options.Subject, granting all requested scopes and audiences, unless
// DenyNext was called.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), redirectKey{}, r.URL.Query().Get("redirect_uri"))
	s.mu.Lock()
	iss, nonce := s.issParam, s.nonce
	s.mu.Unlock()

	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.writeAuthorizeError(ctx, w, r, ar, err, iss)
		return
	}
	s.mu.Lock()
	deny := s.denyNext
	s.denyNext = nil
	s.mu.Unlock()
	if deny != nil {
		s.writeAuthorizeError(ctx, w, r, ar, deny, iss)
		return
	}
	for _, sc := range ar.GetRequestedScopes() {
		ar.GrantScope(sc)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	if nonce != nil {
		// The ID token takes its nonce from the stored authorization request.
		ar.GetRequestForm().Set("nonce", *nonce)
	}
	sess := newSession(s.opts.Subject, s.URL, s.kid)
	// OpenID Connect Core §5.4: profile asks for preferred_username and
	// name, email for email; Dex and most providers put them in the ID
	// token only when asked.
	if ar.GetGrantedScopes().Has("profile") {
		sess.Claims.Add("preferred_username", s.opts.Username)
	}
	if ar.GetGrantedScopes().Has("email") {
		sess.Claims.Add("email", s.opts.Username+"@example.com")
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		s.writeAuthorizeError(ctx, w, r, ar, err, iss)
		return
	}
	if v := s.issValue(iss); v != "" {
		// https://www.rfc-editor.org/rfc/rfc9207#section-2: "the
		// authorization server MUST include the iss parameter in the
		// authorization response"
		resp.AddParameter("iss", v)
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (s *Server) issValue(override *string) string {
	if override != nil {
		return *override
	}
	return s.URL
}

// writeAuthorizeError redirects an error to a validated redirect URI with
// state and iss (RFC 9207 §2 covers error responses too); other errors
// fosite renders itself.
func (s *Server) writeAuthorizeError(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error, iss *string) {
	if ar == nil || !ar.IsRedirectURIValid() {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	u := *ar.GetRedirectURI()
	q := u.Query()
	q.Set("error", rfc.ErrorField)
	q.Set("error_description", rfc.GetDescription())
	if st := ar.GetState(); st != "" {
		q.Set("state", st)
	}
	if v := s.issValue(iss); v != "" {
		q.Set("iss", v)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	defer s.delayAnswer(r)
	ctx := r.Context()
	ar, err := s.provider.NewAccessRequest(ctx, r, newSession("", s.URL, s.kid))
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if s.opts.SendRefreshExpiresIn && resp.GetExtra("refresh_token") != nil {
		resp.SetExtra("refresh_expires_in", int64(s.opts.RefreshTokenLifespan/time.Second))
	}
	if s.beh.omitScope {
		delete(resp.ToMap(), "scope")
	}
	if s.beh.oneRefreshPerClient && ar.GetGrantTypes().ExactOne("authorization_code") {
		s.killOlderGrants(ctx, ar.GetClient().GetID(), ar.GetSession().GetSubject(), ar.GetID())
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// handleRevoke is RFC 7009 revocation. Revoking either token of a grant
// revokes the whole grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	err := s.provider.NewRevocationRequest(r.Context(), r)
	s.provider.WriteRevocationResponse(r.Context(), w, err)
}

// handleIntrospect is RFC 7662 introspection for confidential clients.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ir, err := s.provider.NewIntrospectionRequest(ctx, r, newSession("", s.URL, s.kid))
	if err != nil {
		s.provider.WriteIntrospectionError(ctx, w, err)
		return
	}
	s.provider.WriteIntrospectionResponse(ctx, w, ir)
}

// handleUserinfo answers the OpenID Connect UserInfo request for a bearer
// access token.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "missing bearer token", http.StatusUnauthorized)
		return
	}
	use, ar, err := s.provider.IntrospectToken(r.Context(), token, fosite.AccessToken, newSession("", s.URL, s.kid))
	if (err != nil || use != fosite.AccessToken) && s.opts.Profile == ProfileNextcloudOIDC {
		// UserInfoController.php (2.0.9): an access token that is not the
		// grant's current one is HTTP 400, not RFC 6750's 401.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": "Could not find provided bearer token."})
		return
	}
	if err != nil || use != fosite.AccessToken {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	sub := ar.GetSession().GetSubject()
	info := map[string]any{"sub": sub}
	if ar.GetGrantedScopes().Has("profile") {
		info["preferred_username"] = s.opts.Username
	}
	if ar.GetGrantedScopes().Has("email") {
		info["email"] = s.opts.Username + "@example.com"
	}
	writeJSON(w, info)
}

// count records a request for the counters.
func (s *Server) count(r *http.Request) {
	var grant string
	p := strings.TrimPrefix(r.URL.Path, s.beh.prefix)
	if r.Method == http.MethodPost && p == "/token" {
		_ = r.ParseForm() // fosite reuses the parsed form
		grant = r.PostForm.Get("grant_type")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch p {
	case "/token":
		s.calls[grant]++
	case "/revoke":
		s.revocations++
	case "/.well-known/openid-configuration", "/openid-configuration":
		s.discoveries++
	case "/jwks":
		s.jwksFetches++
	case "/authorize":
		s.authorizations++
	}
}
