package agent

// An account's table in the config: its name, the checks of every field,
// and the broker.Account it becomes.

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncagent/ncagent/broker"
)

// accountName is the syntax of an account name: letters, digits, '-', '_'
// and '.', starting with a letter or digit, at most 64 bytes.
var accountName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
})

// ValidateAccountName checks the syntax of an account name: 1 to 64
// letters, digits, '-', '_' or '.', starting with a letter or a digit.
func ValidateAccountName(name string) error {
	if !accountName().MatchString(name) {
		return fmt.Errorf("invalid account name %q: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit", name)
	}
	return nil
}

// fieldError names the account and the field at fault.
func fieldError(account, field, format string, args ...any) error {
	return fmt.Errorf("account %q: %s: %s", account, field, fmt.Sprintf(format, args...))
}

// asymmetricAlgs are the JWS algorithms allowed in allowed_algs
// (https://www.rfc-editor.org/rfc/rfc7518#section-3.1, RFC 8037). HMAC and
// "none" are refused: the agent holds no shared key to verify them with.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate checks one account's fields; name is the account's name.
func (ac *AccountConfig) Validate(name string) error {
	if err := ValidateAccountName(name); err != nil {
		return err
	}
	switch broker.Kind(ac.Kind) {
	case broker.KindOIDC:
		if ac.Issuer == "" && ac.Server == "" {
			return fieldError(name, "issuer", "required for kind oidc (or set server: the issuer defaults to it)")
		}
		if ac.ClientID == "" {
			return fieldError(name, "client_id", "required for kind oidc: register ncagent as a client at the identity provider")
		}
	case broker.KindAppPassword:
		if ac.Server == "" {
			return fieldError(name, "server", "required for kind app-password")
		}
	case "":
		return fieldError(name, "kind", "missing: want oidc or app-password")
	default:
		return fieldError(name, "kind", "%q: want oidc or app-password", ac.Kind)
	}
	urls := []struct{ field, v string }{
		{"server", ac.Server},
		{"issuer", ac.Issuer},
		{"endpoints.authorization", ac.Endpoints.Authorization},
		{"endpoints.token", ac.Endpoints.Token},
		{"endpoints.revocation", ac.Endpoints.Revocation},
		{"endpoints.jwks", ac.Endpoints.JWKS},
		{"endpoints.device_authorization", ac.Endpoints.DeviceAuthorization},
		{"endpoints.userinfo", ac.Endpoints.Userinfo},
	}
	for _, u := range urls {
		if u.v == "" {
			continue
		}
		if err := checkURL(u.v); err != nil {
			return fieldError(name, u.field, "%v", err)
		}
	}
	switch broker.ClientAuth(ac.ClientAuth) {
	case "", broker.ClientAuthNone, broker.ClientAuthPost, broker.ClientAuthBasic:
	default:
		return fieldError(name, "client_auth", "%q: want none, client_secret_post or client_secret_basic", ac.ClientAuth)
	}
	for _, s := range ac.Scopes {
		if !validScope(s) {
			return fieldError(name, "scopes", "%q is not a scope token (RFC 6749 section 3.3: printable ASCII, no space, '\"' or '\\\\')", s)
		}
	}
	if _, err := parseKeepAlive(ac.KeepAlive); err != nil {
		return fieldError(name, "keepalive", "%v", err)
	}
	if _, err := parseDuration(ac.EarlyRefresh); err != nil {
		return fieldError(name, "early_refresh", "%v", err)
	}
	for _, alg := range ac.AllowedAlgs {
		if !slices.Contains(asymmetricAlgs, alg) {
			return fieldError(name, "allowed_algs", "%q: want some of %s", alg, strings.Join(asymmetricAlgs, ", "))
		}
	}
	for _, aud := range ac.AcceptedAudiences {
		if aud == "" {
			return fieldError(name, "accepted_audiences", "empty audience")
		}
	}
	switch ac.RedirectHost {
	case "", "localhost", "127.0.0.1":
	default:
		return fieldError(name, "redirect_host", "%q: want localhost or 127.0.0.1", ac.RedirectHost)
	}
	if err := broker.ValidTokensPerGrant(ac.TokensPerGrant); err != nil {
		return fieldError(name, "tokens_per_grant", "%v", err)
	}
	if err := broker.ValidateExchangeParams(ac.ExchangeParams); err != nil {
		return fieldError(name, "exchange_params", "%v", err)
	}
	if ac.CAFile != "" {
		if _, err := expandPath(ac.CAFile); err != nil {
			return fieldError(name, "ca_file", "%v", err)
		}
	}
	return nil
}

// Broker validates the account and converts it into a broker.Account,
// reading ca_file into CAPEM. The client secret is not part of the config:
// the caller fills ClientSecret from the keychain. Issuer defaults to
// Server for oidc accounts.
func (ac *AccountConfig) Broker(name string) (broker.Account, error) {
	if err := ac.Validate(name); err != nil {
		return broker.Account{}, err
	}
	keepAlive, _ := parseKeepAlive(ac.KeepAlive)
	early, _ := parseDuration(ac.EarlyRefresh)
	a := broker.Account{
		Name:                    name,
		Kind:                    broker.Kind(ac.Kind),
		Server:                  ac.Server,
		Username:                ac.User,
		Issuer:                  ac.Issuer,
		ClientID:                ac.ClientID,
		ClientAuth:              broker.ClientAuth(ac.ClientAuth),
		Scopes:                  slices.Clone(ac.Scopes),
		Audience:                ac.Audience,
		Endpoints:               ac.Endpoints,
		EarlyRefresh:            early,
		KeepAlive:               keepAlive,
		AcceptedAudiences:       slices.Clone(ac.AcceptedAudiences),
		AllowedAlgs:             slices.Clone(ac.AllowedAlgs),
		CacheExchanged:          ac.CacheExchanged,
		ExchangeFallbackRefresh: ac.ExchangeFallbackRefresh,
		TokensPerGrant:          ac.TokensPerGrant,
		ExchangeParams:          maps.Clone(ac.ExchangeParams),
	}
	if a.Kind == broker.KindOIDC && a.Issuer == "" {
		a.Issuer = a.Server
	}
	if ac.CAFile != "" {
		pemData, err := readCAFile(ac.CAFile)
		if err != nil {
			return broker.Account{}, fieldError(name, "ca_file", "%v", err)
		}
		a.CAPEM = pemData
	}
	return a, nil
}

// maxCAFileSize bounds a ca_file.
const maxCAFileSize = 1 << 20

// readCAFile reads a PEM bundle and checks that it holds a certificate.
func readCAFile(path string) ([]byte, error) {
	p, err := expandPath(path)
	if err != nil {
		return nil, err
	}
	data, err := readBounded(p, maxCAFileSize)
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", p)
	}
	return data, nil
}

// expandPath expands a leading "~/" and requires an absolute path: a
// relative path in a config file would depend on the agent's working
// directory.
func expandPath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, rest), nil
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is relative: give an absolute path (or ~/...)", p)
	}
	return p, nil
}

// checkURL requires an absolute https URL. Plain http is allowed only for
// loopback hosts (localhost, 127.0.0.1, [::1]), for tests and development.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL: want https://host/...")
	}
	if !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL: want https://host/...", raw)
	}
	if u.User != nil {
		return fmt.Errorf("URL must not carry credentials: remove the user info before '@'")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q has a fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return nil
		}
		return fmt.Errorf("%q uses http: want https (plain http is allowed only for localhost, 127.0.0.1 and [::1], for tests and development)", raw)
	}
	return fmt.Errorf("%q: scheme %q: want https", raw, u.Scheme)
}

// validScope reports whether s is an RFC 6749 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ) (https://www.rfc-editor.org/rfc/rfc6749#section-3.3).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// parseDuration parses a non-negative Go duration; empty is zero (default).
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want e.g. \"30s\" or \"10m\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// parseKeepAlive parses keepalive: empty is zero (the default interval),
// "off" or a negative duration disables keep-alive (-1).
func parseKeepAlive(s string) (time.Duration, error) {
	if s == "off" {
		return -1, nil
	}
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want e.g. \"10m\", or \"off\"", s)
	}
	if d < 0 {
		return -1, nil
	}
	if d > 0 && d < 10*time.Second {
		return 0, fmt.Errorf("%q is shorter than 10s", s)
	}
	return d, nil
}
