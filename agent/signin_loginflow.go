package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/untrusted"
	"github.com/ncagent/ncagent/ipc"
)

// loginFlowPollInterval is how often Login Flow v2 is polled. Nextcloud
// documents no interval; its own clients poll every few seconds.
const loginFlowPollInterval = 2 * time.Second

// signInAppPassword gets a Nextcloud app password with Login Flow v2
// (https://docs.nextcloud.com/server/latest/developer_manual/client_apis/LoginFlow/index.html#login-flow-v2):
//
//   - POST {server}/index.php/login/v2 with User-Agent "ncagent (<hostname>)",
//     the name the user later sees for this device under Settings →
//     Security; the answer is {poll: {token, endpoint}, login};
//   - report "open_url" with the login URL, then "waiting";
//   - POST the poll endpoint with token=<poll token> every 2 seconds: 404
//     means pending, 200 brings {server, loginName, appPassword};
//   - verify the credentials with GET {server}/ocs/v2.php/cloud/user: a 401
//     is an error and the app password is dropped.
//
// No answer within r.Timeout (default 20 minutes, the lifetime of a login
// flow token on the server) is ErrSignInTimeout. The poll token and the app
// password are secrets and never leave this function except towards the
// server. The result's Server is the server Nextcloud returned, Username
// the loginName (what Basic auth with an app password needs), UserID and
// DisplayName come from the verification call.
func signInAppPassword(ctx context.Context, r signInRequest) (signInResult, error) {
	r, err := r.withDefaults(DefaultLoginFlowTimeout)
	if err != nil {
		return signInResult{}, err
	}
	r.Method = MethodAppPassword
	server := strings.TrimRight(r.Server, "/")
	if server == "" {
		return signInResult{}, errors.New("app-password sign-in: no server URL")
	}
	if err := broker.CheckEndpointURL("app-password sign-in: server", server); err != nil {
		return signInResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()

	init, err := loginFlowStart(ctx, r, server)
	if err != nil {
		return signInResult{}, err
	}
	deadline := r.Now().Add(r.Timeout)
	r.progress(ipc.LoginEvent{Type: "open_url", URL: init.Login,
		Message: "open this URL in your browser and grant access to ncagent"})
	r.progress(ipc.LoginEvent{Type: "waiting", ExpiresAt: deadline,
		Message: "waiting for access to be granted in the browser"})

	creds, err := loginFlowPoll(ctx, r, init, deadline)
	if err != nil {
		return signInResult{}, err
	}
	credServer, err := loginFlowServer(server, creds.Server)
	if err != nil {
		return signInResult{}, err
	}
	user, err := verifyAppPassword(ctx, r, credServer, creds.LoginName, creds.AppPassword)
	if err != nil {
		return signInResult{}, err
	}
	return signInResult{
		Kind:        broker.KindAppPassword,
		Secret:      creds.AppPassword,
		Server:      credServer,
		Username:    creds.LoginName,
		UserID:      user.ID,
		DisplayName: user.DisplayName,
	}, nil
}

// loginFlowInit is the answer to POST /index.php/login/v2. Poll.Token is a
// secret.
type loginFlowInit struct {
	Poll struct {
		Token    broker.Secret `json:"token"`
		Endpoint string        `json:"endpoint"`
	} `json:"poll"`
	Login string `json:"login"`
}

// loginFlowCredentials is the final answer of the poll endpoint.
type loginFlowCredentials struct {
	Server      string        `json:"server"`
	LoginName   string        `json:"loginName"`
	AppPassword broker.Secret `json:"appPassword"`
}

// userAgent is the User-Agent of the Login Flow v2 start request: Nextcloud
// names the new app password after it.
func (r signInRequest) userAgent() string {
	h, err := r.hostname()
	if err != nil || h == "" {
		return "ncagent"
	}
	return "ncagent (" + untrusted.Text(h, 64) + ")"
}

// send sends req with r's client and returns the status and body of the
// answer. A transport fault, HTTP 429, 502, 503 or 504 is an error
// wrapping broker.ErrUnavailable (the server or its gateway says it cannot
// answer now); any other status, 500 included, is returned for the caller
// to judge: a Nextcloud that answers 500 is up and failing, and "try again
// later" would be the wrong advice. A refused redirect wraps
// broker.ErrRedirect; the end of ctx is loginFlowCtxErr. No error quotes a
// body.
func (r signInRequest) send(ctx context.Context, op string, req *http.Request) (int, []byte, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := r.HTTP.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return 0, nil, loginFlowCtxErr(ctx, r)
	case err != nil && errors.Is(err, broker.ErrRedirect):
		return 0, nil, fmt.Errorf("%s: %w", op, err)
	case err != nil:
		return 0, nil, unavailable(op, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: read: %w", op, err)
	}
	if unavailableStatus(resp.StatusCode) {
		return 0, nil, fmt.Errorf("%s: %w: HTTP %d", op, broker.ErrUnavailable, resp.StatusCode)
	}
	return resp.StatusCode, body, nil
}

// loginFlowStart starts a login flow.
func loginFlowStart(ctx context.Context, r signInRequest, server string) (loginFlowInit, error) {
	const op = "app-password sign-in: start login flow"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, server+"/index.php/login/v2", nil)
	if err != nil {
		return loginFlowInit{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("User-Agent", r.userAgent())
	status, body, err := r.send(ctx, op, req)
	switch {
	case err != nil:
		return loginFlowInit{}, err
	case status == http.StatusNotFound:
		return loginFlowInit{}, fmt.Errorf("%s: %s has no Login Flow v2 (HTTP 404): check the server URL", op, server)
	case status >= 500:
		return loginFlowInit{}, fmt.Errorf("%s: %s answered HTTP %d, a fault of the server itself (not an outage): check its log (nextcloud.log) or ask its admin", op, server, status)
	case status != http.StatusOK:
		return loginFlowInit{}, fmt.Errorf("%s: HTTP %d", op, status)
	}
	var init loginFlowInit
	if err := json.Unmarshal(body, &init); err != nil {
		return loginFlowInit{}, fmt.Errorf("%s: decode: %w (is %s a Nextcloud server?)", op, err, server)
	}
	if init.Poll.Token == "" || init.Poll.Endpoint == "" || init.Login == "" {
		return loginFlowInit{}, fmt.Errorf("%s: the answer lacks poll.token, poll.endpoint or login", op)
	}
	if err := broker.CheckEndpointURL(op+": poll endpoint", init.Poll.Endpoint); err != nil {
		return loginFlowInit{}, err
	}
	if err := checkWebURL(init.Login); err != nil {
		return loginFlowInit{}, fmt.Errorf("%s: the login URL is not an http(s) URL", op)
	}
	return init, nil
}

// loginFlowPoll polls until the user granted access or deadline passed.
func loginFlowPoll(ctx context.Context, r signInRequest, init loginFlowInit, deadline time.Time) (loginFlowCredentials, error) {
	const op = "app-password sign-in: poll login flow"
	failures := 0
	for {
		if err := r.sleep(ctx, loginFlowPollInterval); err != nil {
			return loginFlowCredentials{}, loginFlowCtxErr(ctx, r)
		}
		if !r.Now().Before(deadline) {
			return loginFlowCredentials{}, fmt.Errorf("app-password sign-in: access was not granted within %s: %w", r.Timeout.Round(time.Second), ErrSignInTimeout)
		}
		form := url.Values{"token": {init.Poll.Token.Reveal()}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, init.Poll.Endpoint, strings.NewReader(form))
		if err != nil {
			return loginFlowCredentials{}, fmt.Errorf("%s: %w", op, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		status, body, err := r.send(ctx, op, req)
		switch {
		case errors.Is(err, broker.ErrUnavailable):
			if failures++; failures >= maxPollFailures {
				return loginFlowCredentials{}, err
			}
			continue
		case err != nil:
			return loginFlowCredentials{}, err
		case status == http.StatusNotFound:
			// The poll endpoint answers 404 until the user granted
			// access (Login Flow v2 documentation).
			failures = 0
			continue
		case status >= 500:
			// A passing server fault while the user is signing in: poll on,
			// as for an outage, but say what the server answered.
			if failures++; failures >= maxPollFailures {
				return loginFlowCredentials{}, fmt.Errorf("%s: the server answered HTTP %d %d times in a row: check its log (nextcloud.log)", op, status, failures)
			}
			continue
		case status != http.StatusOK:
			return loginFlowCredentials{}, fmt.Errorf("%s: HTTP %d", op, status)
		}
		var creds loginFlowCredentials
		if err := json.Unmarshal(body, &creds); err != nil {
			return loginFlowCredentials{}, fmt.Errorf("%s: decode: %w", op, err)
		}
		if creds.Server == "" || creds.LoginName == "" || creds.AppPassword == "" {
			return loginFlowCredentials{}, fmt.Errorf("%s: the answer lacks server, loginName or appPassword", op)
		}
		return creds, nil
	}
}

// loginFlowServer checks the server URL Login Flow v2 returned before the
// app password is sent to it. Nextcloud behind a TLS-terminating proxy
// without overwriteprotocol reports http:// for its own https address; the
// same host as the one the user asked for keeps the user's https scheme.
// Any other plain-http URL off loopback is refused.
func loginFlowServer(asked, returned string) (string, error) {
	returned = strings.TrimRight(returned, "/")
	if broker.CheckEndpointURL("", returned) == nil {
		return returned, nil
	}
	a, err1 := url.Parse(asked)
	u, err2 := url.Parse(returned)
	if err1 == nil && err2 == nil && a.Scheme == "https" && u.Scheme == "http" && strings.EqualFold(a.Host, u.Host) {
		u.Scheme = "https"
		return u.String(), nil
	}
	return "", broker.CheckEndpointURL("app-password sign-in: the server Nextcloud returned", returned)
}

// ncUser is who an app password belongs to.
type ncUser struct {
	ID          string
	DisplayName string
}

// verifyAppPassword checks a new app password against
// GET {server}/ocs/v2.php/cloud/user and returns the user's id and display
// name.
func verifyAppPassword(ctx context.Context, r signInRequest, server, loginName string, password broker.Secret) (ncUser, error) {
	const op = "app-password sign-in: verify the new app password"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/ocs/v2.php/cloud/user?format=json", nil)
	if err != nil {
		return ncUser{}, fmt.Errorf("%s: %w", op, err)
	}
	req.SetBasicAuth(loginName, password.Reveal())
	req.Header.Set("OCS-APIRequest", "true")
	status, body, err := r.send(ctx, op, req)
	switch {
	case err != nil:
		return ncUser{}, err
	case status == http.StatusUnauthorized:
		return ncUser{}, fmt.Errorf("%s: %w: %s answered HTTP 401, so nothing was kept: run the login again, and ask your administrator if this repeats", op, ErrSignInRefused, hostOf(server))
	case status != http.StatusOK:
		return ncUser{}, fmt.Errorf("%s: HTTP %d", op, status)
	}
	// Core answers {"display-name": …}, the provisioning API adds
	// "displayname"; accept either.
	var doc struct {
		OCS struct {
			Data struct {
				ID           string `json:"id"`
				DisplayName  string `json:"displayname"`
				DisplayName2 string `json:"display-name"`
			} `json:"data"`
		} `json:"ocs"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return ncUser{}, fmt.Errorf("%s: decode: %w", op, err)
	}
	d := doc.OCS.Data
	if d.ID == "" {
		return ncUser{}, fmt.Errorf("%s: the answer names no user id", op)
	}
	name := d.DisplayName
	if name == "" {
		name = d.DisplayName2
	}
	return ncUser{ID: d.ID, DisplayName: name}, nil
}

// loginFlowCtxErr is the error for a login flow whose context ended.
func loginFlowCtxErr(ctx context.Context, r signInRequest) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("app-password sign-in: access was not granted within %s: %w", r.Timeout.Round(time.Second), ErrSignInTimeout)
	}
	return fmt.Errorf("app-password sign-in: %w", ctx.Err())
}

// unavailableStatus reports whether an HTTP status says the server cannot
// answer now (RFC 9110 §15.6.3–15.6.5, RFC 6585 §4), as opposed to a
// server that answered with a fault of its own.
func unavailableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
