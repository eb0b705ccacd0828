package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ncagent/ncagent/internal/usersock"
)

// baseURL is the URL prefix of every request; the host is ignored, the
// transport always dials the socket.
const baseURL = "http://ncagent"

// maxResponseBytes bounds a non-streaming response the client reads.
const maxResponseBytes = 1 << 20

// Client keep-alive limits. The idle timeout is below the server's
// (DefaultIdleTimeout), so that the server does not close a connection
// the client is about to reuse.
const (
	maxIdleConns    = 64
	idleConnTimeout = time.Minute
)

// Client talks wire protocol v1 to the agent over its socket with
// net/http, keeping connections alive between requests. It is safe for
// concurrent use. Responses carry secrets (tokens): never log them.
//
// A request that fails on a kept-alive connection before any byte of the
// answer arrived is sent once more on a new connection: the agent closes
// idle connections when it stops and after its idle timeout, and never
// leaves a request unanswered otherwise.
type Client struct {
	hc *http.Client
	tr *http.Transport
}

// NewClient returns a client for the agent listening at path (see
// SocketPath). It connects lazily; each connection is checked with Dial.
func NewClient(path string) *Client {
	tr := &http.Transport{
		Proxy: nil, // never send local credentials through an HTTP proxy
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return usersock.Dial(ctx, path) // no "ipc: ": the Client's errors name the request
		},
		MaxIdleConns:        maxIdleConns,
		MaxIdleConnsPerHost: maxIdleConns,
		IdleConnTimeout:     idleConnTimeout,
		DisableCompression:  true,
	}
	hc := &http.Client{
		Transport: tr,
		// v1 never redirects; an answer is returned as it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{hc: hc, tr: tr}
}

// Close closes idle connections. The client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (StatusResponse, error) {
	var out StatusResponse
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
	return out, err
}

// Token asks for a background token. A wire error is returned as *Error.
func (c *Client) Token(ctx context.Context, req TokenRequest) (TokenResponse, error) {
	var out TokenResponse
	err := c.do(ctx, http.MethodPost, "/v1/token", req, &out)
	return out, err
}

// Exchange asks for a session token by RFC 8693 token exchange.
func (c *Client) Exchange(ctx context.Context, req ExchangeRequest) (TokenResponse, error) {
	var out TokenResponse
	err := c.do(ctx, http.MethodPost, "/v1/exchange", req, &out)
	return out, err
}

// Revoke signs an account out.
func (c *Client) Revoke(ctx context.Context, req RevokeRequest) (RevokeResponse, error) {
	var out RevokeResponse
	err := c.do(ctx, http.MethodPost, "/v1/revoke", req, &out)
	return out, err
}

// Login starts a sign-in and reads its event stream, calling progress (if
// not nil) for each event before the final one, in order. It returns the
// final event: of type "done" with a nil error, or of type "error" with an
// *Error built from it. Cancelling ctx disconnects, which cancels the
// sign-in in the agent.
func (c *Client) Login(ctx context.Context, req LoginRequest, progress func(LoginEvent)) (LoginEvent, error) {
	resp, err := c.send(ctx, http.MethodPost, "/v1/login", req, false)
	if err != nil {
		return LoginEvent{}, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev LoginEvent
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return LoginEvent{}, fmt.Errorf("ipc: POST /v1/login: stream ended before the result: %w", err)
		}
		switch ev.Type {
		case "done":
			return ev, nil
		case "error":
			return ev, &Error{Code: ev.Error, Message: ev.Message, Account: ev.Account, Status: resp.StatusCode}
		}
		if progress != nil {
			progress(ev)
		}
	}
}

// do sends a request with in (if not nil) as its JSON body and decodes a
// 200 answer into out; any other status is returned as *Error with Status
// set.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := readAll(resp.Body)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return fmt.Errorf("ipc: %s %s: decoding response: %w", method, path, err)
	}
	return nil
}

// send performs a request and returns a 200 response; any other status is
// returned as *Error with Status set. retry marks the request as safe to
// send again when a kept-alive connection turned out closed before any
// byte of the answer arrived (net/http does so for idempotent requests).
func (c *Client) send(ctx context.Context, method, path string, in any, retry bool) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("ipc: %s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("ipc: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if retry {
		// An Idempotency-Key entry without a value is not sent; it tells
		// the transport the request may be retried.
		req.Header["Idempotency-Key"] = nil
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // the URL is always the same; keep the cause
		}
		return nil, fmt.Errorf("ipc: %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := readAll(resp.Body)
	return nil, responseError(resp.StatusCode, b)
}

// readAll reads a response body of at most maxResponseBytes, to its end
// so that the connection can be reused.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err == nil && len(b) > maxResponseBytes {
		err = fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	return b, err
}

// responseError turns a non-200 answer into *Error.
func responseError(status int, body []byte) error {
	we := &Error{}
	if err := json.Unmarshal(body, we); err != nil || we.Code == "" {
		we = &Error{Code: CodeInternal, Message: "unexpected response: " + strconv.Itoa(status) + " " + http.StatusText(status)}
	}
	we.Status = status
	return we
}
