package ipc

import (
	"bufio"
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
	"sync"
	"time"
)

// baseURL is the URL prefix of every request; the host is ignored, the
// transport always dials the socket.
const baseURL = "http://ncagent"

// maxResponseBytes bounds a non-streaming response the client reads.
const maxResponseBytes = 1 << 20

// Client talks wire protocol v1 to the agent over its socket, keeping
// connections alive between requests. It is safe for concurrent use.
// Responses carry secrets (tokens): never log them.
//
// A request that fails on a kept-alive connection before any byte of the
// answer arrived is sent once more on a new connection: the agent closes
// idle connections when it stops and after its idle timeout, and never
// leaves a request unanswered otherwise.
type Client struct {
	path string
	tr   *http.Transport // login streams

	mu   sync.Mutex    // guards idle
	idle []*clientConn // kept-alive connections, the most recently used last
}

// Client keep-alive limits. The idle timeout is below the server's
// (DefaultIdleTimeout), so that the server does not close a connection
// the client is about to reuse.
const (
	maxIdleConns    = 64
	idleConnTimeout = time.Minute
)

// NewClient returns a client for the agent listening at path (see
// SocketPath). It connects lazily; each connection is checked with Dial.
func NewClient(path string) *Client {
	tr := &http.Transport{
		Proxy: nil, // never send local credentials through an HTTP proxy
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialChecked(ctx, path)
		},
		MaxIdleConns:        4,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     idleConnTimeout,
		DisableCompression:  true,
	}
	return &Client{path: path, tr: tr}
}

// Close closes idle connections. The client stays usable.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cc := range idle {
		cc.c.Close()
	}
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
	resp, err := c.send(ctx, http.MethodPost, "/v1/login", req)
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
// set. It speaks HTTP/1.1 on its own kept-alive connections; Login, which
// streams, goes through net/http.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if r, ok := in.(TokenRequest); ok {
			in = &r
		}
		if body, err = appendJSON(nil, in); err != nil {
			return fmt.Errorf("ipc: %s %s: encoding request: %w", method, path, err)
		}
	}
	for retried := false; ; retried = true {
		cc, reused, err := c.conn(ctx)
		if err != nil {
			return fmt.Errorf("ipc: %s %s: %w", method, path, err)
		}
		status, resp, err := cc.roundTrip(ctx, method, path, body)
		if err != nil {
			cc.c.Close()
			if errors.Is(err, errNoAnswer) && reused && !retried && ctx.Err() == nil {
				continue // the agent closed the idle connection
			}
			return fmt.Errorf("ipc: %s %s: %w", method, path, err)
		}
		err = decodeAnswer(status, resp, out) // before cc is reused: resp is its buffer
		if cc.keep {
			c.put(cc)
		} else {
			cc.c.Close()
		}
		if err != nil && !errors.As(err, new(*Error)) {
			return fmt.Errorf("ipc: %s %s: decoding response: %w", method, path, err)
		}
		return err
	}
}

// decodeAnswer decodes a 200 answer into out; any other status is returned
// as *Error.
func decodeAnswer(status int, body []byte, out any) error {
	if status != http.StatusOK {
		return responseError(status, body)
	}
	if r, ok := out.(*TokenResponse); ok && decodeTokenResponse(body, r) {
		return nil
	}
	return json.Unmarshal(body, out)
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

// conn returns an idle connection, or a new one; reused tells which.
func (c *Client) conn(ctx context.Context) (cc *clientConn, reused bool, err error) {
	now := time.Now()
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		cc = c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		if now.Sub(cc.idleSince) > idleConnTimeout {
			// The others went idle earlier still.
			stale := append(c.idle, cc)
			c.idle = nil
			c.mu.Unlock()
			for _, s := range stale {
				s.c.Close()
			}
			cc = nil
		} else {
			c.mu.Unlock()
			return cc, true, nil
		}
	} else {
		c.mu.Unlock()
	}
	nc, err := dialChecked(ctx, c.path)
	if err != nil {
		return nil, false, err
	}
	return &clientConn{c: nc, br: bufio.NewReaderSize(nc, 4<<10)}, false, nil
}

// put keeps cc for the next request, or closes it when enough are idle.
func (c *Client) put(cc *clientConn) {
	cc.idleSince = time.Now()
	c.mu.Lock()
	if len(c.idle) < maxIdleConns {
		c.idle = append(c.idle, cc)
		cc = nil
	}
	c.mu.Unlock()
	if cc != nil {
		cc.c.Close()
	}
}

// clientConn is one connection of the client's own HTTP/1.1 transport.
type clientConn struct {
	c         net.Conn
	br        *bufio.Reader
	req       []byte    // the request being sent, reused
	resp      []byte    // the last answer's body, reused
	keep      bool      // the last answer left the connection reusable
	idleSince time.Time // set when put back
}

// errNoAnswer marks a round trip that failed before any byte of the
// answer arrived.
var errNoAnswer = errors.New("connection closed before the answer")

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip sends one request and reads its answer, bounded by ctx. The
// answer body is read whole (at most maxResponseBytes).
func (cc *clientConn) roundTrip(ctx context.Context, method, path string, body []byte) (status int, resp []byte, err error) {
	cc.keep = false
	if ctx.Done() != nil {
		// ctx done (cancelled or past its deadline) interrupts the I/O.
		stop := context.AfterFunc(ctx, func() { cc.c.SetDeadline(aLongTimeAgo) })
		defer func() {
			if !stop() {
				cc.keep = false // its deadline is in the past: do not reuse
				if err != nil {
					err = ctx.Err()
				}
			}
		}()
	}

	b := append(cc.req[:0], method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: ncagent\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	cc.req = b
	if _, err := cc.c.Write(b); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	if _, err := cc.br.Peek(1); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return cc.readAnswer()
}

// readAnswer reads one response and its body (at most maxResponseBytes;
// valid until the next request on cc) and sets cc.keep. A head the agent
// sends (HTTP/1.1, one Content-Length) is parsed in place; anything else
// goes through http.ReadResponse.
func (cc *clientConn) readAnswer() (status int, body []byte, err error) {
	head, err := cc.peekHead()
	if err != nil {
		return 0, nil, err
	}
	status, length, closing, ok := parseResponseHead(head)
	if !ok {
		r, err := http.ReadResponse(cc.br, nil)
		if err != nil {
			return 0, nil, err
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxResponseBytes+1))
		if err != nil {
			return 0, nil, fmt.Errorf("reading response: %w", err)
		}
		if len(body) > maxResponseBytes {
			return 0, nil, fmt.Errorf("reading response: larger than %d bytes", maxResponseBytes)
		}
		cc.keep = !r.Close
		return r.StatusCode, body, nil
	}
	cc.br.Discard(len(head))
	if cap(cc.resp) < length {
		cc.resp = make([]byte, length)
	}
	body = cc.resp[:length]
	if _, err := io.ReadFull(cc.br, body); err != nil {
		return 0, nil, fmt.Errorf("reading response: %w", err)
	}
	cc.keep = !closing
	return status, body, nil
}

// peekHead returns the response head (through the empty line) buffered in
// cc.br without consuming it, or nil when it does not fit in the buffer.
func (cc *clientConn) peekHead() ([]byte, error) {
	for {
		b, _ := cc.br.Peek(cc.br.Buffered())
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+4], nil
		}
		if len(b) == cc.br.Size() {
			return nil, nil
		}
		if _, err := cc.br.Peek(len(b) + 1); err != nil {
			return nil, fmt.Errorf("reading response: %w", err)
		}
	}
}

// parseResponseHead parses the head the agent sends: "HTTP/1.1", a final
// status, exactly one Content-Length of at most MaxBodyBytes (a larger
// answer is left to net/http too), no Transfer-Encoding; ok is false for
// anything else.
func parseResponseHead(head []byte) (status, length int, closing, ok bool) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || len(line) > 12 && line[12] != ' ' || !isFieldValue(line) {
		return 0, 0, false, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, false, false
		}
		status = status*10 + int(c-'0')
	}
	if status < 200 {
		return 0, 0, false, false
	}
	lengths := 0
	for len(rest) > 2 {
		var field []byte
		field, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(field, []byte(":"))
		value = bytes.Trim(value, " \t")
		if !found || !isToken(name) || !isFieldValue(value) {
			return 0, 0, false, false // also obsolete line folding
		}
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || lengths > 0 {
				return 0, 0, false, false
			}
			length, lengths = n, 1
		case equalFold(name, "transfer-encoding"):
			return 0, 0, false, false
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				if equalFold(bytes.Trim(tok, " \t"), "close") {
					closing = true
				}
			}
		}
	}
	return status, length, closing, lengths == 1
}

// send performs a request through net/http and returns a 200 response;
// any other status is returned as *Error with Status set.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
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
	// The transport directly: no redirects, cookies or client timeout to
	// apply, and ctx bounds the request.
	resp, err := c.tr.RoundTrip(req)
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
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return nil, responseError(resp.StatusCode, b)
}
