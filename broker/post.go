package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ncagent/ncagent/internal/untrusted"
)

// transientError is a fault worth retrying: a network error, HTTP 5xx or
// 429. retryAfter is the server's Retry-After, when it sent one.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// tokenResponse is a successful token endpoint response
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.1,
// https://www.rfc-editor.org/rfc/rfc8693#section-2.2.1,
// https://openid.net/specs/openid-connect-core-1_0.html#TokenResponse).
// AccessToken, RefreshToken and IDToken are secrets.
type tokenResponse struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        seconds `json:"expires_in"`
	RefreshToken     string  `json:"refresh_token"`
	RefreshExpiresIn seconds `json:"refresh_expires_in"` // Keycloak and others
	Scope            string  `json:"scope"`
	IssuedTokenType  string  `json:"issued_token_type"`
	IDToken          string  `json:"id_token"`
}

// seconds decodes a JSON number or a numeric string (some IdPs quote it).
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "" || str == "null" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil || f < 0 || f > 1<<40 {
		return errors.New("not a number of seconds")
	}
	*s = seconds(f)
	return nil
}

// clientAuthOf returns the account's client authentication method.
func clientAuthOf(a Account) ClientAuth {
	if a.ClientAuth != "" {
		return a.ClientAuth
	}
	if a.ClientSecret == "" {
		return ClientAuthNone
	}
	return ClientAuthBasic
}

// postForm is Provider.postForm for the account cfg, through the Broker's
// client for its CA bundle: the refresh chain, the exchange and revocation
// send their requests this way.
func (b *Broker) postForm(ctx context.Context, op string, cfg Account, endpoint string, form url.Values) ([]byte, error) {
	client, err := b.clientForCall(ctx, cfg.CAPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p := Provider{acct: cfg, client: client, now: b.now}
	return p.postForm(ctx, op, endpoint, form)
}

// postForm POSTs form to endpoint with the account's client authentication
// and returns the body of a 200 answer. Other answers become errors: a
// *RedirectError for 3xx, a *transientError (wrapping an *IdPError) for 429
// and 5xx or a network fault, an *IdPError otherwise. No error carries the
// request body, the response body or a secret of the form.
func (p *Provider) postForm(ctx context.Context, op string, endpoint string, form url.Values) ([]byte, error) {
	if err := CheckEndpointURL(op+": endpoint", endpoint); err != nil {
		return nil, err
	}
	cfg, client := p.acct, p.client
	// Client authentication,
	// https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1: "the client
	// identifier is encoded using the application/x-www-form-urlencoded
	// encoding algorithm per Appendix B, and the encoded value is used as
	// the username; the client password is encoded using the same algorithm
	// and used as the password." Public clients send client_id in the form
	// (https://www.rfc-editor.org/rfc/rfc6749#section-3.2.1).
	basic := false
	switch clientAuthOf(cfg) {
	case ClientAuthPost:
		form.Set("client_id", cfg.ClientID)
		form.Set("client_secret", cfg.ClientSecret.Reveal())
	case ClientAuthBasic:
		basic = true
	default:
		form.Set("client_id", cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret.Reveal()))
	}
	resp, err := client.Do(req)
	if err != nil {
		var re *RedirectError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s: %w", op, re)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		// The *url.Error names the endpoint, which holds no secret (forms
		// travel in the body).
		return nil, &transientError{err: fmt.Errorf("%s: %w", op, err)}
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return nil, &transientError{err: fmt.Errorf("%s: read response: %w", op, err)}
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	ie := parseIdPError(op, resp.StatusCode, body, form)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return nil, &transientError{err: ie, retryAfter: retryAfter(resp.Header.Get("Retry-After"), p.now())}
	}
	return nil, ie
}

// parseIdPError turns an error answer into an *IdPError
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.2). Only "error" and
// "error_description" are kept, cleaned of control characters, bounded in
// length, and scrubbed of any secret the request carried.
func parseIdPError(op string, status int, body []byte, form url.Values) *IdPError {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &e) // a non-JSON body leaves both empty
	return newIdPError(op, status, e.Error, e.Description, form)
}

// newIdPError is the *IdPError of an error answer with code and
// description as sent: scrubbed of any secret the request form carried,
// cleaned of control characters and bounded in length. An empty code
// becomes "http_" + status.
func newIdPError(op string, status int, code, description string, form url.Values) *IdPError {
	// Scrub first, then clean and bound: truncation must not leave part of
	// a secret behind.
	for _, k := range []string{"refresh_token", "subject_token", "actor_token", "client_secret", "token", "code", "code_verifier", "device_code"} {
		if v := form.Get(k); len(v) >= 4 {
			code = strings.ReplaceAll(code, v, redacted)
			description = strings.ReplaceAll(description, v, redacted)
		}
	}
	ie := &IdPError{Op: op, StatusCode: status, Code: untrusted.Text(code, 64), Description: untrusted.Text(description, 1000)}
	if ie.Code == "" {
		ie.Code = "http_" + strconv.Itoa(status)
	}
	return ie
}

// retryAfter parses a Retry-After header: delta-seconds or an HTTP-date
// (https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3). Zero when absent
// or unparsable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// withRetry calls attempt until it succeeds, fails with a non-transient
// error, or maxAttempts are spent. Between attempts it waits an
// exponential backoff with full jitter, or the server's Retry-After when
// longer, never past ctx's deadline: when the next wait cannot fit, it
// stops early. Exhausted transient faults return an error wrapping
// ErrUnavailable and the last fault.
func (b *Broker) withRetry(ctx context.Context, op string, attempt func() error) error {
	var last *transientError
	n := 0
	for i := 0; i < b.maxAttempts; i++ {
		if i > 0 {
			ceil := b.backoffBase << (i - 1)
			if ceil > b.backoffMax || ceil <= 0 {
				ceil = b.backoffMax
			}
			wait := time.Duration(b.jitter(int64(ceil) + 1))
			if last.retryAfter > wait {
				wait = last.retryAfter
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
				break // the next attempt cannot happen within the deadline
			}
			if err := b.sleep(ctx, wait); err != nil {
				break
			}
		}
		n++
		err := attempt()
		if err == nil {
			return nil
		}
		if !errors.As(err, &last) {
			return err
		}
		b.log.Debug("transient identity provider fault", "op", op, "attempt", i+1, "err", err.Error())
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %w: %w", op, ErrUnavailable, ctx.Err(), last)
	}
	return fmt.Errorf("%s: %w after %d attempts: %w", op, ErrUnavailable, n, last)
}

// decodeTokenResponse parses a 200 answer of the token endpoint. It fails
// on malformed JSON or a missing access_token; the error never quotes the
// body.
func decodeTokenResponse(op string, body []byte) (*tokenResponse, error) {
	var r tokenResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: malformed token response (invalid JSON at byte %d of %d)", op, se.Offset, len(body))
		}
		return nil, fmt.Errorf("%s: malformed token response (%d bytes)", op, len(body))
	}
	if r.AccessToken == "" {
		return nil, fmt.Errorf("%s: token response has no access_token", op)
	}
	return &r, nil
}
