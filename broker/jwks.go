package broker

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// jwksMaxBody bounds a JWKS document read from the IdP.
	jwksMaxBody = 1 << 20
	// jwksTTL is how long a fetched key set is trusted before it is fetched
	// again, even when every kid is known.
	jwksTTL = time.Hour
	// jwksDefaultMinRefetch is the default minimum interval between two
	// refetches triggered by an unknown kid.
	jwksDefaultMinRefetch = 5 * time.Minute
	// rsaMinBits is the smallest RSA modulus accepted from a JWKS. RFC 7518
	// §3.3 (https://www.rfc-editor.org/rfc/rfc7518#section-3.3): "A key of
	// size 2048 bits or larger MUST be used with these algorithms."
	rsaMinBits = 2048
	// rsaMaxBits bounds the cost of one signature verification.
	rsaMaxBits = 16384
)

// jsonWebKey is one usable verification key of a JWKS
// (https://www.rfc-editor.org/rfc/rfc7517#section-4). Only public
// asymmetric signature keys are ever represented: symmetric ("oct") keys
// are skipped when the set is parsed, so no HS* token can ever verify.
type jsonWebKey struct {
	kid string           // "kid", may be empty
	alg string           // "alg", may be empty; when set, the only algorithm the key is used with
	key crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// usableFor reports whether k may verify a signature made with the JWS
// algorithm alg. The key type must fit the algorithm family (and for ECDSA,
// the curve must be the one the algorithm names), so that a key can never be
// used with an algorithm it was not made for: RFC 8725 §3.1
// (https://www.rfc-editor.org/rfc/rfc8725#section-3.1): "each key MUST be
// used with exactly one algorithm, and this MUST be checked when the
// cryptographic operation is performed". A key's own "alg", when present,
// must equal the token's (RFC 7517 §4.4,
// https://www.rfc-editor.org/rfc/rfc7517#section-4.4).
func (k jsonWebKey) usableFor(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok := k.key.(*rsa.PublicKey)
		return ok
	case "ES256":
		return isECKeyOn(k.key, elliptic.P256())
	case "ES384":
		return isECKeyOn(k.key, elliptic.P384())
	case "ES512":
		return isECKeyOn(k.key, elliptic.P521())
	case "EdDSA":
		_, ok := k.key.(ed25519.PublicKey)
		return ok
	}
	return false
}

func isECKeyOn(key crypto.PublicKey, curve elliptic.Curve) bool {
	pub, ok := key.(*ecdsa.PublicKey)
	return ok && pub.Curve == curve
}

// jwksCache holds the key set published at an issuer's jwks_uri. Keys are
// fetched on first use, again once they are older than jwksTTL, and again
// when a token names a kid the set does not hold, at most once every
// minRefetch. A jwksCache is safe for concurrent use.
//
// Fetch faults (transport errors, a status other than 200, an oversized or
// malformed document) are returned as errors wrapping ErrUnavailable, never
// ErrSubjectToken: they say nothing about the token, and callers must be
// able to tell "the IdP could not be asked" from "the token is bad". When
// the set is older than jwksTTL and cannot be fetched again, verification
// fails closed with that error rather than trusting stale keys.
type jwksCache struct {
	client     *http.Client
	url        string
	display    string // url without query or user info, for error messages
	now        func() time.Time
	minRefetch time.Duration
	ttl        time.Duration

	// fetching is a one-slot semaphore held for the duration of a fetch, so
	// that there is one fetch at a time. It is a channel rather than a mutex
	// so that waiters can give up when their context ends.
	fetching chan struct{}

	mu          sync.Mutex   // guards the fields below
	keys        []jsonWebKey // keys of the last successful fetch; never mutated, only replaced
	loaded      bool         // a fetch has succeeded at least once
	fetchedAt   time.Time    // time of the last successful fetch
	refetchedAt time.Time    // time of the last fetch triggered by an unknown kid
	refetched   bool         // refetchedAt is set
	attempts    uint64       // number of fetch attempts, so waiters see a fetch that happened meanwhile
	lastErr     error        // error of the last attempt, nil when it succeeded
}

// newJWKSCache returns a cache of the JWKS at rawURL, fetched with client
// (http.DefaultClient when nil). An unknown kid triggers a refetch, at most
// once every minRefetch (default 5 min when zero); keys are also refreshed
// after a TTL (1 h). now is the clock (time.Now when nil). The cache is safe
// for concurrent use.
func newJWKSCache(client *http.Client, rawURL string, now func() time.Time, minRefetch time.Duration) *jwksCache {
	if client == nil {
		client = http.DefaultClient
	}
	if now == nil {
		now = time.Now
	}
	if minRefetch <= 0 {
		minRefetch = jwksDefaultMinRefetch
	}
	display := rawURL
	if u, err := url.Parse(rawURL); err == nil {
		display = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	return &jwksCache{
		client:     client,
		url:        rawURL,
		display:    display,
		now:        now,
		minRefetch: minRefetch,
		ttl:        jwksTTL,
		fetching:   make(chan struct{}, 1),
	}
}

// current returns the key set, fetching it first when it was never loaded
// or is older than the TTL.
func (c *jwksCache) current(ctx context.Context) ([]jsonWebKey, error) {
	c.mu.Lock()
	keys, seen := c.keys, c.attempts
	fresh := c.loaded && c.now().Sub(c.fetchedAt) < c.ttl
	c.mu.Unlock()
	if fresh {
		return keys, nil
	}
	return c.fetchOnce(ctx, seen, false)
}

// refetch fetches the key set again because a token named a key the set
// does not hold. It reports fetched=false without fetching when the last
// such refetch was less than minRefetch ago, so that tokens with made-up
// kids cannot make the agent hammer the IdP.
func (c *jwksCache) refetch(ctx context.Context) (keys []jsonWebKey, fetched bool, err error) {
	c.mu.Lock()
	seen := c.attempts
	limited := c.refetched && c.now().Sub(c.refetchedAt) < c.minRefetch
	keys = c.keys
	c.mu.Unlock()
	if limited {
		return keys, false, nil
	}
	keys, err = c.fetchOnce(ctx, seen, true)
	return keys, true, err
}

// fetchOnce fetches the key set unless a fetch attempt completed since the
// caller observed attempt counter seen, in which case that attempt's
// outcome is shared. Only one fetch runs at a time; waiting for it respects
// ctx.
func (c *jwksCache) fetchOnce(ctx context.Context, seen uint64, byUnknownKid bool) ([]jsonWebKey, error) {
	select {
	case c.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("jwks: wait for fetch of %s: %w", c.display, ctx.Err())
	}
	defer func() { <-c.fetching }()

	c.mu.Lock()
	if c.attempts != seen {
		keys, err := c.keys, c.lastErr
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return keys, nil
	}
	c.mu.Unlock()

	keys, err := c.fetch(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.attempts++
	c.lastErr = err
	if byUnknownKid {
		c.refetchedAt, c.refetched = now, true
	}
	if err != nil {
		return nil, err
	}
	c.keys, c.loaded, c.fetchedAt = keys, true, now
	return keys, nil
}

// fetch GETs and parses the key set. Every error wraps ErrUnavailable.
func (c *jwksCache) fetch(ctx context.Context) ([]jsonWebKey, error) {
	if c.url == "" {
		return nil, fmt.Errorf("jwks: no jwks_uri configured for the issuer: %w", ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: invalid url: %w", c.display, ErrUnavailable)
	}
	// RFC 7517 §8.5 (https://www.rfc-editor.org/rfc/rfc7517#section-8.5).
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL, query included; keep its cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("jwks: fetch %s: %w: %w", c.display, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("jwks: fetch %s: HTTP %d: %w", c.display, resp.StatusCode, ErrUnavailable)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: read body: %w: %w", c.display, ErrUnavailable, err)
	}
	if len(body) > jwksMaxBody {
		return nil, fmt.Errorf("jwks: fetch %s: document larger than %d bytes: %w", c.display, jwksMaxBody, ErrUnavailable)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w: %w", c.display, ErrUnavailable, err)
	}
	return keys, nil
}

// rawJWK is a JWK as it appears on the wire. Fields not listed are ignored;
// in particular private members ("d", "p", ...) are never read.
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// errJWKSkipped marks a JWK that is well-formed JSON but not usable here.
var errJWKSkipped = errors.New("key skipped")

// parseJWKS parses a JWK Set document
// (https://www.rfc-editor.org/rfc/rfc7517#section-5) and returns its usable
// signature verification keys. A document that is not a JSON object with a
// "keys" array is an error; single keys that are malformed, meant for
// encryption, symmetric or of an unsupported type are skipped without
// failing the set (RFC 7517 §5: "Implementations SHOULD ignore JWKs within
// a JWK Set that use "kty" (key type) values that are not understood by
// them, that are missing required members, or for which values are out of
// the supported ranges.").
func parseJWKS(body []byte) ([]jsonWebKey, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode jwk set: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New(`decode jwk set: no "keys" array`)
	}
	var keys []jsonWebKey
	for _, raw := range *doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// parseJWK parses one JWK. Errors wrap errJWKSkipped and never contain key
// material.
func parseJWK(raw json.RawMessage) (jsonWebKey, error) {
	var r rawJWK
	if err := json.Unmarshal(raw, &r); err != nil {
		return jsonWebKey{}, fmt.Errorf("%w: not a jwk object", errJWKSkipped)
	}
	// RFC 7517 §4.2 (https://www.rfc-editor.org/rfc/rfc7517#section-4.2):
	// "sig" (signature) or "enc" (encryption); only signature keys verify.
	if r.Use != "" && r.Use != "sig" {
		return jsonWebKey{}, fmt.Errorf("%w: use %q", errJWKSkipped, r.Use)
	}
	// RFC 7517 §4.3 (https://www.rfc-editor.org/rfc/rfc7517#section-4.3):
	// when key_ops is present, the key may verify only if it lists "verify".
	if r.KeyOps != nil && !slices.Contains(r.KeyOps, "verify") {
		return jsonWebKey{}, fmt.Errorf("%w: key_ops without verify", errJWKSkipped)
	}
	k := jsonWebKey{kid: r.Kid, alg: r.Alg}
	var err error
	switch r.Kty {
	case "RSA":
		k.key, err = parseRSAJWK(r)
	case "EC":
		k.key, err = parseECJWK(r)
	case "OKP":
		k.key, err = parseOKPJWK(r)
	default:
		// "oct" (symmetric) keys are deliberately unsupported: a shared
		// secret published in a JWKS is no secret.
		err = fmt.Errorf("%w: unsupported kty %q", errJWKSkipped, r.Kty)
	}
	if err != nil {
		return jsonWebKey{}, err
	}
	return k, nil
}

// parseRSAJWK parses the "n" and "e" members of an RSA JWK
// (https://www.rfc-editor.org/rfc/rfc7518#section-6.3.1).
func parseRSAJWK(r rawJWK) (*rsa.PublicKey, error) {
	n, err := jwkBytes(r.N)
	if err != nil || len(n) == 0 {
		return nil, fmt.Errorf("%w: rsa: bad n", errJWKSkipped)
	}
	e, err := jwkBytes(r.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%w: rsa: bad e", errJWKSkipped)
	}
	mod := new(big.Int).SetBytes(n)
	if bits := mod.BitLen(); bits < rsaMinBits || bits > rsaMaxBits {
		return nil, fmt.Errorf("%w: rsa: %d-bit modulus", errJWKSkipped, bits)
	}
	var exp int64
	for _, b := range e {
		exp = exp<<8 | int64(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, fmt.Errorf("%w: rsa: bad exponent", errJWKSkipped)
	}
	return &rsa.PublicKey{N: mod, E: int(exp)}, nil
}

// parseECJWK parses an EC JWK. RFC 7518 §6.2.1.2
// (https://www.rfc-editor.org/rfc/rfc7518#section-6.2.1.2): the length of
// "x" and "y" "MUST be the full size of a coordinate for the curve specified
// in the "crv" parameter". The point must lie on the curve.
func parseECJWK(r rawJWK) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	var size int
	switch r.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	case "P-521":
		curve, size = elliptic.P521(), 66
	default:
		return nil, fmt.Errorf("%w: ec: unsupported crv %q", errJWKSkipped, r.Crv)
	}
	x, errX := jwkBytes(r.X)
	y, errY := jwkBytes(r.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%w: ec: bad coordinates", errJWKSkipped)
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4) // SEC 1 uncompressed point
	point = append(point, x...)
	point = append(point, y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("%w: ec: invalid point", errJWKSkipped)
	}
	return pub, nil
}

// parseOKPJWK parses an Ed25519 OKP JWK
// (https://www.rfc-editor.org/rfc/rfc8037#section-2).
func parseOKPJWK(r rawJWK) (ed25519.PublicKey, error) {
	if r.Crv != "Ed25519" {
		return nil, fmt.Errorf("%w: okp: unsupported crv %q", errJWKSkipped, r.Crv)
	}
	x, err := jwkBytes(r.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: okp: bad x", errJWKSkipped)
	}
	return ed25519.PublicKey(x), nil
}

// jwkBytes decodes a base64url JWK member
// (https://www.rfc-editor.org/rfc/rfc7518#section-2, Base64urlUInt). The
// JWKS comes from the configured IdP over TLS, so trailing padding is
// tolerated.
func jwkBytes(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
