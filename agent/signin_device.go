package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// deviceCodeGrant is the device flow's grant type
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.4).
const deviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code"

// Device flow polling parameters (https://www.rfc-editor.org/rfc/rfc8628).
const (
	// defaultDeviceInterval: section 3.2, interval "OPTIONAL. The minimum
	// amount of time in seconds that the client SHOULD wait between polling
	// requests to the token endpoint. If no value is provided, clients MUST
	// use 5 as the default."
	defaultDeviceInterval = 5 * time.Second
	// slowDownStep: section 3.5, slow_down: "the interval MUST be increased
	// by 5 seconds for this and all subsequent requests."
	slowDownStep = 5 * time.Second
	// maxPollFailures is how many transport failures or 5xx answers in a
	// row end the polling.
	maxPollFailures = 3
)

// signInDevice signs in with the OAuth 2.0 device authorization grant
// (https://www.rfc-editor.org/rfc/rfc8628): it requests a device code with
// the client's authentication and scopes (plus openid and offline_access),
// reports a "user_code" event (verification URI, user code, expiry), then
// polls the token endpoint at the server's interval: authorization_pending
// keeps polling, slow_down adds 5 seconds to the interval, access_denied is
// ErrSignInDenied, expired_token or the code's local expiry (or r.Timeout,
// default 5 minutes, whichever comes first) is ErrSignInTimeout.
//
// An ID token in the response is verified (signature, iss, aud, exp);
// without one the user is looked up at the userinfo endpoint, when there is
// one. A token response without a refresh token is ErrNoRefreshToken. The
// device code is a secret and never leaves this function except towards the
// token endpoint.
func signInDevice(ctx context.Context, r signInRequest) (signInResult, error) {
	r, err := r.withDefaults(DefaultSignInTimeout)
	if err != nil {
		return signInResult{}, err
	}
	r.Method = MethodDevice
	if err := checkDeviceRequest(r); err != nil {
		return signInResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()

	da, err := deviceAuthorize(ctx, r)
	if err != nil {
		return signInResult{}, err
	}
	deadline := announceDeviceCode(r, da)
	interval := da.Interval
	if interval <= 0 {
		interval = defaultDeviceInterval
	}
	tr, err := pollDeviceToken(ctx, r, da.DeviceCode, interval, deadline)
	if err != nil {
		return signInResult{}, err
	}
	return finishOIDC(ctx, r, tr, "", "device sign-in")
}

// checkDeviceRequest refuses a device sign-in that cannot work before a
// code is shown to the user; the broker checks the endpoints again.
func checkDeviceRequest(r signInRequest) error {
	if r.ClientID == "" {
		return errors.New("device sign-in: no client id")
	}
	if r.Metadata.DeviceAuthorizationEndpoint == "" {
		return fmt.Errorf("device sign-in: issuer %s offers no device authorization endpoint: sign in with the browser instead", r.issuer())
	}
	if r.Metadata.TokenEndpoint == "" {
		return errors.New("device sign-in: the issuer's metadata names no token endpoint")
	}
	for what, u := range map[string]string{"device authorization endpoint": r.Metadata.DeviceAuthorizationEndpoint, "token endpoint": r.Metadata.TokenEndpoint} {
		if err := broker.CheckEndpointURL("device sign-in: "+what, u); err != nil {
			return err
		}
	}
	return nil
}

// announceDeviceCode reports the code to enter and where ("user_code",
// then "waiting"), and returns when the flow gives up: the code's expiry
// or the sign-in timeout, whichever comes first.
func announceDeviceCode(r signInRequest, da broker.DeviceAuthorization) (deadline time.Time) {
	start := r.Now()
	deadline = start.Add(r.Timeout)
	if da.ExpiresIn > 0 && start.Add(da.ExpiresIn).Before(deadline) {
		deadline = start.Add(da.ExpiresIn)
	}
	msg := fmt.Sprintf("open %s and enter the code %s", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		msg += " (or open " + da.VerificationURIComplete + ", which fills in the code)"
	}
	r.progress(ipc.LoginEvent{Type: "user_code", URL: da.VerificationURI, UserCode: da.UserCode, ExpiresAt: deadline, Message: msg})
	r.progress(ipc.LoginEvent{Type: "waiting", ExpiresAt: deadline, Message: "waiting for the code to be entered"})
	return deadline
}

// pollDeviceToken polls the token endpoint with the device code
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.4) every interval,
// waiting before each poll (section 3.5), until the user has entered the
// code, refused, or deadline passed.
func pollDeviceToken(ctx context.Context, r signInRequest, code broker.Secret, interval time.Duration, deadline time.Time) (broker.TokenResponse, error) {
	failures := 0
	for {
		if err := r.sleep(ctx, interval); err != nil {
			return broker.TokenResponse{}, deviceCtxErr(ctx, r)
		}
		if !r.Now().Before(deadline) {
			return broker.TokenResponse{}, fmt.Errorf("device sign-in: the code was not entered before it expired: %w", ErrSignInTimeout)
		}
		tr, err := r.idp.Grant(ctx, url.Values{"grant_type": {deviceCodeGrant}, "device_code": {code.Reveal()}})
		if err == nil {
			return tr, nil
		}
		if ctx.Err() != nil {
			return broker.TokenResponse{}, deviceCtxErr(ctx, r)
		}
		again, slower, err := devicePollAnswer(err, &failures)
		if !again {
			return broker.TokenResponse{}, err
		}
		if slower {
			interval += slowDownStep
		}
	}
}

// devicePollAnswer reads a failed poll
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.5): authorization_pending
// polls again, slow_down polls again more slowly, access_denied and
// expired_token end the flow, and so do maxPollFailures transport faults or
// 5xx answers in a row (counted in *failures).
func devicePollAnswer(err error, failures *int) (again, slower bool, _ error) {
	var e *broker.IdPError
	if errors.As(err, &e) {
		switch e.Code {
		case "authorization_pending":
			*failures = 0
			return true, false, nil
		case "slow_down":
			*failures = 0
			return true, true, nil
		case "access_denied":
			return false, false, fmt.Errorf("device sign-in: %w: %w", ErrSignInDenied, e)
		case "expired_token":
			return false, false, fmt.Errorf("device sign-in: the code expired before it was entered: %w", ErrSignInTimeout)
		}
	}
	if errors.Is(err, broker.ErrUnavailable) {
		if *failures++; *failures < maxPollFailures {
			return true, false, nil
		}
	}
	return false, false, fmt.Errorf("device sign-in: poll token endpoint: %w", err)
}

// deviceCtxErr is the error for a device flow whose context ended.
func deviceCtxErr(ctx context.Context, r signInRequest) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("device sign-in: the code was not entered within %s: %w", r.Timeout.Round(time.Second), ErrSignInTimeout)
	}
	return fmt.Errorf("device sign-in: %w", ctx.Err())
}

// deviceAuthorize requests a device code
// (https://www.rfc-editor.org/rfc/rfc8628#section-3.1) and checks that the
// verification URIs the user is sent to are web pages.
func deviceAuthorize(ctx context.Context, r signInRequest) (broker.DeviceAuthorization, error) {
	da, err := r.idp.AuthorizeDevice(ctx, signInScopes(r.Scopes, r.Metadata))
	if err != nil {
		if ctx.Err() != nil {
			return broker.DeviceAuthorization{}, deviceCtxErr(ctx, r)
		}
		return broker.DeviceAuthorization{}, fmt.Errorf("device sign-in: %w", err)
	}
	// The user is sent to these URIs: only web pages, never another scheme.
	for _, u := range []string{da.VerificationURI, da.VerificationURIComplete} {
		if u != "" && checkWebURL(u) != nil {
			return broker.DeviceAuthorization{}, errors.New("device sign-in: the verification URI is not an http(s) URL")
		}
	}
	return da, nil
}
