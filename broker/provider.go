package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Provider is one account's identity provider as the protocol sees it: the
// account's client (id, secret, authentication method), the provider's
// metadata (discovered, with the account's Endpoints overrides applied) and
// the HTTP client that reaches it. It makes the protocol calls of the
// sign-in flows (code exchange, device authorization, token requests, ID
// token verification, userinfo), and the Broker's refresh chain sends its
// token requests through it too.
//
// A Provider holds no refresh chain, cache or account state: its calls
// never change an account of a Broker. It is safe for concurrent use.
// Secrets it is given or returns must not be logged.
type Provider struct {
	acct   Account // the client; acct.Endpoints are already folded into md
	md     Metadata
	client *http.Client
	now    func() time.Time

	// jwks returns the JWKS cache of a URL: the Broker's shared one, or
	// one of this Provider's own (ownJWKS).
	jwks func(url string) (*jwksCache, error)

	jwksMu  sync.Mutex            // guards ownJWKS
	ownJWKS map[string]*jwksCache // by URL; when not the Broker's
}

// ProviderOptions configure NewProvider and DiscoverProvider.
type ProviderOptions struct {
	// HTTPClient reaches the provider; default NewHTTPClient with the
	// account's CAPEM.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewProvider returns the Provider of acct whose metadata md is already
// known (acct.Endpoints overrides win over it). It makes no network call.
func NewProvider(acct Account, md Metadata, o ProviderOptions) (*Provider, error) {
	client := o.HTTPClient
	if client == nil {
		c, err := NewHTTPClient(HTTPOptions{CAPEM: acct.CAPEM})
		if err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
		client = c
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	p := &Provider{acct: acct, md: applyOverrides(md, acct.Endpoints), client: client, now: now}
	p.jwks = p.ownJWKSFor
	return p, nil
}

// DiscoverProvider fetches acct's discovery document (uncached; see
// Broker.Provider for the cached one) and returns its Provider. An account
// without Issuer needs Endpoints.Token and makes no network call, as with
// Broker.Discover.
func DiscoverProvider(ctx context.Context, acct Account, o ProviderOptions) (*Provider, error) {
	p, err := NewProvider(acct, Metadata{}, o)
	if err != nil {
		return nil, err
	}
	if acct.Issuer == "" {
		if acct.Endpoints.Token == "" {
			return nil, errors.New("discovery: account has neither an issuer nor a token endpoint")
		}
		return p, nil
	}
	md, err := fetchDiscovery(ctx, p.client, acct.Issuer)
	if err != nil {
		return nil, err
	}
	p.md = applyOverrides(md, acct.Endpoints)
	return p, nil
}

// Provider returns acct's Provider built from the Broker's cached discovery,
// its HTTP client for acct's CA bundle and its shared JWKS cache. acct need
// not be added with SetAccount.
func (b *Broker) Provider(ctx context.Context, acct Account) (*Provider, error) {
	md, err := b.Discover(ctx, acct)
	if err != nil {
		return nil, err
	}
	client, err := b.clientFor(acct.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	return &Provider{acct: acct, md: md, client: client, now: b.now,
		jwks: func(url string) (*jwksCache, error) { return b.jwksFor(acct, url) }}, nil
}

// Metadata returns the provider's metadata, the account's Endpoints
// overrides applied.
func (p *Provider) Metadata() Metadata { return p.md }

// Issuer is the issuer identifier ID tokens and RFC 9207 iss parameters are
// compared against: the discovered one, else the account's.
func (p *Provider) Issuer() string {
	if p.md.Issuer != "" {
		return p.md.Issuer
	}
	return p.acct.Issuer
}

// endpoint returns u, or an error of op saying the issuer offers no what.
func (p *Provider) endpoint(op, what, u string) (string, error) {
	if u == "" {
		return "", fmt.Errorf("%s: the issuer offers no %s", op, what)
	}
	return u, nil
}

// ownJWKSFor returns this Provider's own JWKS cache of url.
func (p *Provider) ownJWKSFor(url string) (*jwksCache, error) {
	p.jwksMu.Lock()
	defer p.jwksMu.Unlock()
	if p.ownJWKS == nil {
		p.ownJWKS = map[string]*jwksCache{}
	}
	c, ok := p.ownJWKS[url]
	if !ok {
		c = newJWKSCache(p.client, url, p.now, jwksMinRefetch)
		p.ownJWKS[url] = c
	}
	return c, nil
}
