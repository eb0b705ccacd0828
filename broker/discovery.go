package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	// discoveryTTL is how long a fetched discovery document is reused.
	discoveryTTL = time.Hour
	// discoveryFailTTL is how long a failed discovery is remembered, so a
	// burst of requests against a dead IdP does not become a burst of
	// fetches; after it the next request tries again.
	discoveryFailTTL = 5 * time.Second
	// maxResponseBytes bounds every body read from an IdP.
	maxResponseBytes = 1 << 20
)

// discEntry is one issuer's discovery result. Its fields are written once,
// before done is closed, and read only after.
type discEntry struct {
	md      Metadata // as published, before per-account overrides
	err     error
	expires time.Time
	done    chan struct{} // closed when the fetch finished
}

// Discover returns the account's OpenID Provider metadata: the issuer's
// discovery document with the account's Endpoints overrides applied (set
// overrides win). The document is cached per issuer for an hour; a failed
// discovery is retried after a few seconds; concurrent calls for one issuer
// share one fetch.
//
// An account without Issuer needs Endpoints.Token; its Metadata then holds
// the overrides only and no network call is made.
//
// Discover is safe for concurrent use.
func (b *Broker) Discover(ctx context.Context, a Account) (Metadata, error) {
	if a.Issuer == "" {
		if a.Endpoints.Token == "" {
			return Metadata{}, errors.New("discovery: account has neither an issuer nor a token endpoint")
		}
		return applyOverrides(Metadata{}, a.Endpoints), nil
	}
	md, err := b.discover(ctx, a.Issuer, a.CAPEM)
	if err != nil {
		return Metadata{}, err
	}
	return applyOverrides(md, a.Endpoints), nil
}

func applyOverrides(md Metadata, e Endpoints) Metadata {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&md.AuthorizationEndpoint, e.Authorization)
	set(&md.TokenEndpoint, e.Token)
	set(&md.RevocationEndpoint, e.Revocation)
	set(&md.JWKSURI, e.JWKS)
	set(&md.DeviceAuthorizationEndpoint, e.DeviceAuthorization)
	set(&md.UserinfoEndpoint, e.Userinfo)
	return md
}

// discover returns the cached or freshly fetched document of issuer.
func (b *Broker) discover(ctx context.Context, issuer string, caPEM []byte) (Metadata, error) {
	for {
		b.discMu.Lock()
		e := b.disc[issuer]
		if e != nil {
			select {
			case <-e.done:
				if b.now().Before(e.expires) {
					b.discMu.Unlock()
					return e.md, e.err
				}
				e = nil // expired: fetch again
			default:
			}
		}
		if e != nil { // a fetch is in flight: wait for it
			b.discMu.Unlock()
			select {
			case <-e.done:
				continue
			case <-ctx.Done():
				return Metadata{}, fmt.Errorf("discovery: %w", ctx.Err())
			}
		}
		e = &discEntry{done: make(chan struct{})}
		b.disc[issuer] = e
		b.discMu.Unlock()

		md, err := b.fetchDiscoveryWith(ctx, issuer, caPEM)
		e.md, e.err = md, err
		switch {
		case err == nil:
			e.expires = b.now().Add(b.discoveryTTL)
		case ctx.Err() != nil:
			// The caller gave up: not the issuer's fault, remember nothing.
			e.expires = time.Time{}
		default:
			e.expires = b.now().Add(b.discoveryFailTTL)
		}
		close(e.done)
		if e.expires.IsZero() {
			b.discMu.Lock()
			if b.disc[issuer] == e {
				delete(b.disc, issuer)
			}
			b.discMu.Unlock()
		}
		return md, err
	}
}

// forgetDiscovery drops the cached document of issuer, e.g. after its token
// endpoint answered 404 (the endpoint moved).
func (b *Broker) forgetDiscovery(issuer string) {
	b.discMu.Lock()
	defer b.discMu.Unlock()
	if e, ok := b.disc[issuer]; ok {
		select {
		case <-e.done:
			delete(b.disc, issuer)
		default: // in flight: its result is fresh anyway
		}
	}
}

// fetchDiscoveryWith fetches issuer's discovery document with the
// Broker's client for caPEM.
func (b *Broker) fetchDiscoveryWith(ctx context.Context, issuer string, caPEM []byte) (Metadata, error) {
	client, err := b.clientFor(caPEM)
	if err != nil {
		return Metadata{}, fmt.Errorf("discovery: %w", err)
	}
	return fetchDiscovery(ctx, client, issuer)
}

// fetchDiscovery fetches and checks issuer's discovery document, uncached.
func fetchDiscovery(ctx context.Context, client *http.Client, issuer string) (Metadata, error) {
	if err := CheckEndpointURL("discovery: issuer", issuer); err != nil {
		return Metadata{}, err
	}
	// "If the Issuer value contains a path component, any terminating /
	// MUST be removed before appending /.well-known/openid-configuration."
	// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationRequest
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Metadata{}, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Metadata{}, fmt.Errorf("discovery: %w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		return Metadata{}, fmt.Errorf("discovery: read %s: %w: %w", u, ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return Metadata{}, fmt.Errorf("discovery: GET %s: HTTP %d: %w", u, resp.StatusCode, ErrUnavailable)
		}
		return Metadata{}, fmt.Errorf("discovery: GET %s: HTTP %d", u, resp.StatusCode)
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return Metadata{}, fmt.Errorf("discovery: GET %s: malformed document: %w", u, err)
	}
	// "The issuer value returned MUST be identical to the Issuer URL that
	// was used as the prefix to /.well-known/openid-configuration to
	// retrieve the configuration information."
	// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfigurationValidation
	if md.Issuer != issuer {
		return Metadata{}, fmt.Errorf("discovery: GET %s: document names issuer %q, want %q", u, md.Issuer, issuer)
	}
	if md.TokenEndpoint == "" {
		return Metadata{}, fmt.Errorf("discovery: GET %s: document has no token_endpoint", u)
	}
	return md, nil
}
