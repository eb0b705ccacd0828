package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ncagent/ncagent/broker"
)

// Credentials supplies the real Authorization of a session's account.
type Credentials interface {
	// Authorization returns the value of the Authorization header for a
	// request of a session with spec: "Bearer …" valid long enough for
	// the request to arrive, or "Basic …". The value must not be logged.
	Authorization(ctx context.Context, spec Spec) (string, error)
	// Reject reports that the upstream answered 401 to authorization, so
	// that the next Authorization call does not return it again.
	Reject(spec Spec, authorization string)
}

// BrokerCredentials takes credentials from the broker: background tokens
// for the session's scopes and audience, served from the broker's cache
// and refreshed through the account's one chain.
type BrokerCredentials struct {
	Broker *broker.Broker
	// MinValid is how long a token must stay valid when handed out (the
	// account's early refresh applies when it is larger).
	MinValid time.Duration
}

var _ Credentials = BrokerCredentials{}

// Authorization implements Credentials.
func (c BrokerCredentials) Authorization(ctx context.Context, spec Spec) (string, error) {
	t, err := c.Broker.Token(ctx, broker.TokenRequest{Account: spec.Account, Scopes: spec.Scopes, Audience: spec.Audience, MinValid: c.MinValid})
	if err != nil {
		return "", err
	}
	return t.Authorization(), nil
}

// Reject implements Credentials.
func (c BrokerCredentials) Reject(spec Spec, authorization string) {
	if tok, ok := strings.CutPrefix(authorization, "Bearer "); ok {
		c.Broker.Reject(spec.Account, broker.Secret(tok))
	}
}

// NewTransport returns the transport for an account's server: the system
// CA pool plus caPEM when given, TLS 1.2 or newer. It is not the broker's
// client (broker.NewHTTPClient) on purpose: that client turns a redirect
// of a POST into an error and bounds every request to 30 s, while a proxy
// must hand redirects to its client and stream bodies of any size.
func NewTransport(caPEM []byte) (*http.Transport, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("proxy: the account's CA bundle holds no PEM certificate")
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Minute, // Nextcloud assembles chunked uploads before answering
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}, nil
}
