package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// defaultAlgs is the default allow-list of JWS algorithms for subject
// tokens: asymmetric signatures only. Never "none", never HS*: RFC 8725
// §3.1 (https://www.rfc-editor.org/rfc/rfc8725#section-3.1): "Libraries
// MUST enable the caller to specify a supported set of algorithms and MUST
// NOT use any other algorithms when performing cryptographic operations."
var defaultAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// maxSubjectToken bounds the size of a subject token checked locally; the
// IPC layer refuses larger bodies anyway.
const maxSubjectToken = 64 << 10

// subjectPolicy is what a JWT must satisfy: a subject token, or, with
// kind set, another kind of token (an ID token).
type subjectPolicy struct {
	// Issuer must equal the token's "iss" exactly. Required.
	Issuer string
	// Audiences: the token's "aud" (a string or an array) must contain at
	// least one of them. Required (empty strings are ignored).
	Audiences []string
	// Algs is the allow-list of JWS algorithms; empty means defaultAlgs.
	// Algorithms outside defaultAlgs (none, HS*) never verify, even if
	// listed, because no symmetric key is ever taken from a JWKS.
	Algs []string
	// Leeway is the clock skew tolerated for exp, nbf and iat.
	Leeway time.Duration

	// kind names the token in errors and gives the sentinel rejections
	// wrap; the zero value means subjectTokenKind.
	kind jwtKind
}

// jwtKind is what a verified JWT is for.
type jwtKind struct {
	name   string // "subject token", "id token": names the token in errors
	reject error  // wrapped by every rejection: ErrSubjectToken, ErrIDToken
}

var (
	subjectTokenKind = jwtKind{name: "subject token", reject: ErrSubjectToken}
	idTokenKind      = jwtKind{name: "id token", reject: ErrIDToken}
)

// claimSet is what a verified token's payload is decoded into: the
// registered claims plus whatever the caller reads.
type claimSet interface {
	jwt.Claims
	registered() *jwt.RegisteredClaims
}

// subjectClaims are the claims read from a subject token.
type subjectClaims struct{ jwt.RegisteredClaims }

func (c *subjectClaims) registered() *jwt.RegisteredClaims { return &c.RegisteredClaims }

// keyFault is a reason found during key lookup to reject a token (a header
// the verifier does not support); explainRejection wraps it with the
// kind's sentinel.
type keyFault string

func (f keyFault) Error() string { return string(f) }

// errNoKey is reported by the key lookup when the JWKS has no key the token
// could have been signed with.
var errNoKey = errors.New("no matching key")

// verify checks a JWT subject token and returns its "sub" claim. It checks,
// in this order: the compact JWS shape; the algorithm against p.Algs; the
// signature against the issuer's JWKS (key picked by "kid", and by key type
// and "alg" compatibility; every compatible key is tried when the token has
// no kid); then "iss" (exact match), "exp" (required), "nbf" and "iat" when
// present (each with p.Leeway), "aud" (one accepted audience) and "sub"
// (required). See RFC 7519 §7.2
// (https://www.rfc-editor.org/rfc/rfc7519#section-7.2) and RFC 8725 §3.
//
// A rejected token yields an error wrapping ErrSubjectToken that says which
// check failed. A JWKS that cannot be fetched yields an error wrapping
// ErrUnavailable (and not ErrSubjectToken); a context that ends while
// waiting yields an error wrapping ctx.Err(). No error ever contains the
// token or key material. verify is safe for concurrent use.
func (c *jwksCache) verify(ctx context.Context, token string, p subjectPolicy) (subject string, err error) {
	var claims subjectClaims
	if err := c.verifyClaims(ctx, token, p, &claims); err != nil {
		return "", err
	}
	return claims.Subject, nil
}

// verifyClaims checks token as verify describes, for the kind of token
// p.kind names (rejections wrap p.kind.reject), and decodes its payload
// into claims. A claim of claims' own fields that has the wrong JSON type
// makes the token malformed.
func (c *jwksCache) verifyClaims(ctx context.Context, token string, p subjectPolicy, claims claimSet) error {
	kind := p.kind
	if kind.reject == nil {
		kind = subjectTokenKind
	}
	reject := kind.reject
	if p.Issuer == "" {
		return fmt.Errorf("%w: no issuer configured to check iss against", reject)
	}
	auds := slices.DeleteFunc(slices.Clone(p.Audiences), func(a string) bool { return a == "" })
	if len(auds) == 0 {
		return fmt.Errorf("%w: no accepted audience configured", reject)
	}
	algs := p.Algs
	if len(algs) == 0 {
		algs = defaultAlgs
	}
	// Passing an empty list to jwt.WithValidMethods would disable the
	// check, so the intersection is never allowed to be empty.
	algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !slices.Contains(defaultAlgs, a) })
	if len(algs) == 0 {
		return fmt.Errorf("%w: no supported algorithm allowed by the configuration", reject)
	}
	if len(token) > maxSubjectToken {
		return fmt.Errorf("%w: token larger than %d bytes", reject, maxSubjectToken)
	}
	leeway := max(p.Leeway, 0)

	parser := jwt.NewParser(
		// RFC 8725 §3.1: algorithm verification against an allow-list,
		// checked before any key is looked up.
		jwt.WithValidMethods(algs),
		// RFC 8725 §3.8 (https://www.rfc-editor.org/rfc/rfc8725#section-3.8):
		// "validate that the cryptographic keys used for the cryptographic
		// operations in the JWT belong to the issuer".
		jwt.WithIssuer(p.Issuer),
		// RFC 8725 §3.9 (https://www.rfc-editor.org/rfc/rfc8725#section-3.9):
		// the relying party "MUST validate the audience value".
		jwt.WithAudience(auds...),
		// RFC 7519 §4.1.4 (https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4):
		// "The processing of the "exp" claim requires that the current
		// date/time MUST be before the expiration date/time listed";
		// required here, a subject token must not live forever.
		jwt.WithExpirationRequired(),
		// nbf (RFC 7519 §4.1.5) is checked when present by default; iat
		// in the future is refused as well.
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(c.now),
		// RFC 7515 §2 (https://www.rfc-editor.org/rfc/rfc7515#section-2):
		// base64url without padding; non-canonical encodings are refused.
		jwt.WithStrictDecoding(),
	)
	var keyErr error
	keyfunc := func(t *jwt.Token) (any, error) {
		k, err := c.keyFor(ctx, t)
		keyErr = err
		return k, err
	}
	tok, err := parser.ParseWithClaims(token, claims, keyfunc)
	if err != nil {
		return explainRejection(kind, tok, claims.registered(), algs, keyErr, err)
	}
	// RFC 8693 §2.1 (https://www.rfc-editor.org/rfc/rfc8693#section-2.1):
	// the subject token "represents the identity of the party on behalf
	// of whom the request is being made"; a token naming nobody is refused.
	// An ID token's sub is REQUIRED as well
	// (https://openid.net/specs/openid-connect-core-1_0.html#IDToken).
	if claims.registered().Subject == "" {
		return fmt.Errorf("%w: sub claim missing", reject)
	}
	return nil
}

// keyFor returns the key (or jwt.VerificationKeySet) that may verify t. It
// runs after the algorithm was checked against the allow-list.
func (c *jwksCache) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	// RFC 7515 §4.1.11 (https://www.rfc-editor.org/rfc/rfc7515#section-4.1.11):
	// "If any of the listed extension Header Parameters are not understood
	// and supported by the recipient, then the JWS is invalid." None are.
	if _, ok := t.Header["crit"]; ok {
		return nil, keyFault("crit header not supported")
	}
	alg := t.Method.Alg()
	// RFC 7515 §4.1.4 (https://www.rfc-editor.org/rfc/rfc7515#section-4.1.4):
	// "The structure of the "kid" value is unspecified. Its value MUST be a
	// case-sensitive string."
	var kid string
	rawKid, hasKid := t.Header["kid"]
	if hasKid {
		s, ok := rawKid.(string)
		if !ok {
			return nil, keyFault("kid header is not a string")
		}
		kid = s
	}

	keys, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	match, known := matchKeys(keys, hasKid, kid, alg)
	if len(match) == 0 && !known {
		// The IdP may have rotated its keys since the set was fetched.
		var fetched bool
		keys, fetched, err = c.refetch(ctx)
		if err != nil {
			return nil, err
		}
		if fetched {
			match, known = matchKeys(keys, hasKid, kid, alg)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case len(match) > 1:
		return jwt.VerificationKeySet{Keys: match}, nil
	case hasKid && known:
		return nil, fmt.Errorf("%w: the key named by kid does not fit alg %s", errNoKey, alg)
	case hasKid:
		return nil, fmt.Errorf("%w: no key with the token's kid in the issuer's jwks", errNoKey)
	default:
		return nil, fmt.Errorf("%w: no key for alg %s in the issuer's jwks", errNoKey, alg)
	}
}

// matchKeys returns the keys of set usable with alg (and named kid when
// hasKid). known reports whether some key is named kid (when hasKid), or
// whether match is non-empty (when not), i.e. whether refetching could not
// help.
func matchKeys(set []jsonWebKey, hasKid bool, kid, alg string) (match []jwt.VerificationKey, known bool) {
	for _, k := range set {
		if hasKid {
			if k.kid != kid {
				continue
			}
			known = true
		}
		if k.usableFor(alg) {
			match = append(match, k.key)
		}
	}
	if !hasKid {
		known = len(match) > 0
	}
	return match, known
}

// explainRejection turns a jwt parse error into an error wrapping
// kind.reject that names the failed checks, or returns the key lookup's own
// error when it was a fetch fault. The token's content never enters the
// message, except an allow-listed-shape alg name.
func explainRejection(kind jwtKind, tok *jwt.Token, claims *jwt.RegisteredClaims, algs []string, keyErr, err error) error {
	reject := kind.reject
	if keyErr != nil {
		var kf keyFault
		switch {
		case errors.As(keyErr, &kf), errors.Is(keyErr, errNoKey):
			return fmt.Errorf("%w: %w", reject, keyErr)
		default: // fetch fault or ctx end: not the token's fault
			return fmt.Errorf("verify %s: %w", kind.name, keyErr)
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: malformed token", reject)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: alg header missing or unknown", reject)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && !slices.Contains(algs, tok.Method.Alg()) {
			// tok.Method is one of the library's registered methods, so
			// its name is a short constant, not token content.
			return fmt.Errorf("%w: algorithm %s not allowed", reject, tok.Method.Alg())
		}
		return fmt.Errorf("%w: signature invalid", reject)
	}
	var reasons []string
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		if claims.ExpiresAt == nil {
			reasons = append(reasons, "exp claim missing")
		}
		if claims.Issuer == "" {
			reasons = append(reasons, "iss claim missing")
		}
		if len(claims.Audience) == 0 || len(claims.Audience) == 1 && claims.Audience[0] == "" {
			reasons = append(reasons, "aud claim missing")
		}
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		reasons = append(reasons, "expired")
	}
	if errors.Is(err, jwt.ErrTokenNotValidYet) {
		reasons = append(reasons, "not valid yet (nbf)")
	}
	if errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		reasons = append(reasons, "issued in the future (iat)")
	}
	if errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		reasons = append(reasons, "iss does not match the configured issuer")
	}
	if errors.Is(err, jwt.ErrTokenInvalidAudience) {
		reasons = append(reasons, "aud names no accepted audience")
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "invalid claims")
	}
	return fmt.Errorf("%w: %s", reject, strings.Join(reasons, ", "))
}

// looksLikeJWT reports whether token has the compact JWS shape
// (https://www.rfc-editor.org/rfc/rfc7515#section-7.1): three
// dot-separated base64url segments, the first a JSON object with a string
// "alg". It errs towards true: anything that could be a JWS, including an
// unsigned one with an empty signature, is reported so that it gets
// verified (and refused) rather than passed on unchecked.
func looksLikeJWT(token string) bool {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return false
	}
	if !isBase64URL(payload) || !isBase64URL(sig) {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(header, "="))
	if err != nil || len(hb) == 0 {
		return false
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(hb, &h); err != nil {
		return false
	}
	var alg string
	return h["alg"] != nil && json.Unmarshal(h["alg"], &alg) == nil
}

// isBase64URL reports whether s holds only base64url characters, with
// optional trailing padding.
func isBase64URL(s string) bool {
	s = strings.TrimRight(s, "=")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
