//go:build unix

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
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// rawDo sends one request as raw bytes over a fresh connection and reads
// the response. A nil body sends no Content-Length.
func rawDo(t *testing.T, path, method, target string, body []byte) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: ncagent\r\nConnection: close\r\n", method, target)
	if body != nil {
		fmt.Fprintf(&req, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n")
	go func() {
		// The server may answer (413) before reading all of a large body;
		// a write error then is expected.
		c.Write(append(req.Bytes(), body...))
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: reading response: %v", method, target, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return resp, b
}

func TestRawHTTP(t *testing.T) {
	b := &fakeBackend{}
	b.token = func(ctx context.Context, p Peer, r TokenRequest) (TokenResponse, error) {
		// Backend errors chosen by account name, to check the status mapping.
		codes := map[string]string{
			"c-forbidden": CodeForbidden, "c-needs": CodeNeedsLogin, "c-idp": CodeIdPError,
			"c-unavail": CodeIdPUnavailable, "c-timeout": CodeTimeout,
		}
		if code, ok := codes[r.Account]; ok {
			return TokenResponse{}, fmt.Errorf("wrapped: %w", &Error{Code: code, Message: "from backend", Account: r.Account})
		}
		if r.Account == "deadline" {
			return TokenResponse{}, fmt.Errorf("idp call: %w", context.DeadlineExceeded)
		}
		return fakeToken(r.Account, r.Scopes)
	}
	ts := startServer(t, b, ServerOptions{})
	under64K := []byte(`{"account":"work","pad":"` + strings.Repeat("x", MaxBodyBytes-100) + `"}`)

	cases := []struct {
		name         string
		method, path string
		body         string
		raw          []byte
		wantStatus   int
		wantCode     string // error code, or "" for success
		wantInMsg    string
	}{
		{"status", "GET", "/v1/status", "", nil, 200, "", ""},
		{"token", "POST", "/v1/token", `{"account":"work","scopes":["openid"]}`, nil, 200, "", ""},
		{"token empty body", "POST", "/v1/token", "", nil, 200, "", ""},
		{"token scopes as string", "POST", "/v1/token", `{"scopes":"openid files"}`, nil, 200, "", ""},
		{"unknown fields ignored", "POST", "/v1/token", `{"account":"work","future":{"a":[1,2]},"x":null}`, nil, 200, "", ""},
		{"just under 64 KiB", "POST", "/v1/token", "", under64K, 200, "", ""},
		{"1 MiB body", "POST", "/v1/token", "", bytes.Repeat([]byte(" "), 1<<20), 413, CodeTooLarge, "larger than"},
		{"64 KiB plus one", "POST", "/v1/token", "", append(under64K, bytes.Repeat([]byte(" "), 101)...), 413, CodeTooLarge, ""},
		{"malformed JSON", "POST", "/v1/token", `{"account":`, nil, 400, CodeInvalidRequest, "malformed JSON"},
		{"not an object", "POST", "/v1/token", `["work"]`, nil, 400, CodeInvalidRequest, "JSON object"},
		{"trailing data", "POST", "/v1/token", `{} {}`, nil, 400, CodeInvalidRequest, "after the object"},
		{"scopes wrong type", "POST", "/v1/token", `{"scopes":5}`, nil, 400, CodeInvalidRequest, "scopes"},
		{"scopes bad token", "POST", "/v1/token", `{"scopes":["a\"b"]}`, nil, 400, CodeInvalidRequest, "scopes[0]"},
		{"min_valid_seconds wrong type", "POST", "/v1/token", `{"min_valid_seconds":"x"}`, nil, 400, CodeInvalidRequest, "min_valid_seconds: want integer, got string"},
		{"min_valid_seconds negative", "POST", "/v1/token", `{"min_valid_seconds":-1}`, nil, 400, CodeInvalidRequest, "min_valid_seconds"},
		{"account wrong type", "POST", "/v1/token", `{"account":1}`, nil, 400, CodeInvalidRequest, "account: want string, got number"},
		{"unknown account", "POST", "/v1/token", `{"account":"nope"}`, nil, 404, CodeUnknownAccount, "no such account"},
		{"backend forbidden", "POST", "/v1/token", `{"account":"c-forbidden"}`, nil, 403, CodeForbidden, "from backend"},
		{"backend needs_login", "POST", "/v1/token", `{"account":"c-needs"}`, nil, 409, CodeNeedsLogin, ""},
		{"backend idp_error", "POST", "/v1/token", `{"account":"c-idp"}`, nil, 502, CodeIdPError, ""},
		{"backend idp_unavailable", "POST", "/v1/token", `{"account":"c-unavail"}`, nil, 503, CodeIdPUnavailable, ""},
		{"backend timeout", "POST", "/v1/token", `{"account":"c-timeout"}`, nil, 504, CodeTimeout, ""},
		{"backend deadline", "POST", "/v1/token", `{"account":"deadline"}`, nil, 504, CodeTimeout, ""},
		{"backend plain error", "POST", "/v1/token", `{"account":"boom"}`, nil, 500, CodeInternal, "internal error"},
		{"exchange", "POST", "/v1/exchange", `{"subject_token":"` + subjectSecret + `"}`, nil, 200, "", ""},
		{"exchange subject wrong type", "POST", "/v1/exchange", `{"subject_token":["` + subjectSecret + `"]}`, nil, 400, CodeInvalidRequest, "subject_token: want string, got array"},
		{"exchange empty body", "POST", "/v1/exchange", "", nil, 400, CodeInvalidRequest, "empty body"},
		{"exchange without subject", "POST", "/v1/exchange", `{"audience":"nextcloud"}`, nil, 400, CodeInvalidRequest, "subject_token: required"},
		{"revoke", "POST", "/v1/revoke", `{"account":"work"}`, nil, 200, "", ""},
		{"revoke without account", "POST", "/v1/revoke", `{}`, nil, 400, CodeInvalidRequest, "account: required"},
		{"revoke unknown account", "POST", "/v1/revoke", `{"account":"nope"}`, nil, 404, CodeUnknownAccount, ""},
		{"login bad method", "POST", "/v1/login", `{"account":"w","method":"pigeon"}`, nil, 400, CodeInvalidRequest, "method"},
		{"login unknown account", "POST", "/v1/login", `{"account":"nope"}`, nil, 404, CodeUnknownAccount, ""},
		{"wrong method", "GET", "/v1/token", "", nil, 405, CodeMethod, "POST"},
		{"wrong method status", "POST", "/v1/status", `{}`, nil, 405, CodeMethod, "GET"},
		{"unknown path", "GET", "/v2/status", "", nil, 404, CodeNotFound, "/v2/status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.raw
			if body == nil && tc.method == "POST" {
				body = []byte(tc.body)
			}
			resp, got := rawDo(t, ts.path, tc.method, tc.path, body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got status %d, want %d; body %s", resp.StatusCode, tc.wantStatus, got)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want %q", ct, "application/json")
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("got Cache-Control %q, want %q", cc, "no-store")
			}
			var e Error
			if err := json.Unmarshal(got, &e); err != nil {
				t.Fatalf("body %q: %v", got, err)
			}
			if e.Code != tc.wantCode {
				t.Errorf("got code %q, want %q (message %q)", e.Code, tc.wantCode, e.Message)
			}
			if !strings.Contains(e.Message, tc.wantInMsg) {
				t.Errorf("got message %q, want it to contain %q", e.Message, tc.wantInMsg)
			}
			if tc.wantStatus == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow header")
			}
		})
	}
	logs := ts.logs.String()
	for _, want := range []string{"level=ERROR msg=\"ipc: backend error\"", "backend exploded", "msg=\"ipc: token issued\"", "peer_pid=" + fmt.Sprint(os.Getpid())} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestLoginStream(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	resp, body := rawDo(t, ts.path, "POST", "/v1/login", []byte(`{"account":"work"}`))
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("got Content-Type %q, want application/x-ndjson", ct)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	var types []string
	for _, l := range lines {
		var ev LoginEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if ev.Account != "work" {
			t.Errorf("event %q: got account %q, want work", ev.Type, ev.Account)
		}
		types = append(types, ev.Type)
	}
	if got, want := strings.Join(types, ","), "method,open_url,waiting,done"; got != want {
		t.Errorf("got events %q, want %q", got, want)
	}
}

func TestLoginErrorAfterEvents(t *testing.T) {
	b := &fakeBackend{login: func(ctx context.Context, p Peer, r LoginRequest, progress func(LoginEvent)) (LoginEvent, error) {
		progress(LoginEvent{Type: "user_code", URL: "https://idp.example/device", UserCode: "ABCD-EFGH"})
		progress(LoginEvent{Type: "done"}) // must be dropped: only ipc writes the final event
		return LoginEvent{}, &Error{Code: CodeIdPError, Message: "access_denied", IdPError: "access_denied"}
	}}
	ts := startServer(t, b, ServerOptions{})
	var seen []LoginEvent
	final, err := NewClient(ts.path).Login(context.Background(), LoginRequest{Account: "work", Method: "device"}, func(ev LoginEvent) { seen = append(seen, ev) })
	var we *Error
	if !errors.As(err, &we) || we.Code != CodeIdPError {
		t.Fatalf("got %v, want *Error idp_error", err)
	}
	if final.Type != "error" || final.Error != CodeIdPError {
		t.Errorf("got final %+v, want type error with code idp_error", final)
	}
	if len(seen) != 1 || seen[0].UserCode != "ABCD-EFGH" {
		t.Errorf("got progress %+v, want one user_code event", seen)
	}
}

func TestLoginClientDisconnectCancelsBackend(t *testing.T) {
	ctxErr := make(chan error, 1)
	b := &fakeBackend{login: func(ctx context.Context, p Peer, r LoginRequest, progress func(LoginEvent)) (LoginEvent, error) {
		progress(LoginEvent{Type: "open_url", URL: "https://idp.example/auth"})
		select {
		case <-ctx.Done():
			ctxErr <- ctx.Err()
			return LoginEvent{}, ctx.Err()
		case <-time.After(5 * time.Second):
			ctxErr <- nil
			return LoginEvent{}, nil
		}
	}}
	// Short read and write timeouts: the stream must outlive both.
	ts := startServer(t, b, ServerOptions{ReadTimeout: 200 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	_, err := NewClient(ts.path).Login(ctx, LoginRequest{Account: "work"}, func(ev LoginEvent) {
		go func() { time.Sleep(600 * time.Millisecond); cancel() }()
	})
	if err == nil {
		t.Fatal("got nil error after cancel, want one")
	}
	select {
	case got := <-ctxErr:
		if !errors.Is(got, context.Canceled) {
			t.Errorf("backend ctx: got %v, want context.Canceled", got)
		}
		if el := time.Since(start); el < 500*time.Millisecond {
			t.Errorf("backend cancelled after %v, before the client left (timeouts must not end a login)", el)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("backend ctx not cancelled after the client went away")
	}
}

func TestHandlerTimeout(t *testing.T) {
	b := &fakeBackend{token: func(ctx context.Context, p Peer, r TokenRequest) (TokenResponse, error) {
		<-ctx.Done()
		return TokenResponse{}, ctx.Err()
	}}
	// The backend gets WriteTimeout minus a tenth of it (200 ms here), enough
	// for the 504 to be written on a loaded machine.
	ts := startServer(t, b, ServerOptions{WriteTimeout: 2 * time.Second})
	start := time.Now()
	_, err := NewClient(ts.path).Token(context.Background(), TokenRequest{})
	var we *Error
	if !errors.As(err, &we) || we.Code != CodeTimeout || we.Status != 504 {
		t.Fatalf("got %v, want timeout 504", err)
	}
	// Not a timing test: only that the request ended by the handler's
	// deadline rather than hanging until the client gave up.
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("took %v, want it cut off near the 2s write timeout", el)
	}
}

func TestSlowClientCutOff(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	ts := startServer(t, nil, ServerOptions{ReadTimeout: readTimeout, WriteTimeout: 2 * time.Second})
	stalls := []struct {
		name    string
		partial string
	}{
		{"half headers", "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nContent-Le"},
		{"half body", "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nContent-Length: 100\r\n\r\n{\"account\":"},
	}
	for _, st := range stalls {
		t.Run(st.name, func(t *testing.T) {
			slow, err := net.Dial("unix", ts.path)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			start := time.Now()
			if _, err := io.WriteString(slow, st.partial); err != nil {
				t.Fatal(err)
			}
			// Meanwhile a normal client is served, repeatedly.
			c := NewClient(ts.path)
			defer c.Close()
			for i := 0; i < 5; i++ {
				if _, err := c.Token(context.Background(), TokenRequest{}); err != nil {
					t.Fatalf("normal client during stall: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			slow.SetReadDeadline(time.Now().Add(3 * time.Second))
			got, err := readUntilClosed(slow)
			if err != nil {
				t.Fatalf("stalled conn not closed by the server: %v", err)
			}
			el := time.Since(start)
			if el < readTimeout-50*time.Millisecond || el > readTimeout+time.Second {
				t.Errorf("cut off after %v, want about %v", el, readTimeout)
			}
			if len(got) > 0 && !bytes.HasPrefix(got, []byte("HTTP/1.1 400")) {
				t.Errorf("got %q, want nothing or a 400", got)
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{MaxConns: 2}, func(s *Server) { s.connWait = 200 * time.Millisecond })
	held := make([]net.Conn, 2)
	for i := range held {
		c, err := net.Dial("unix", ts.path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A keep-alive request proves the server accepted the connection.
		io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: ncagent\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		held[i] = c
	}
	over, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	io.WriteString(over, "GET /v1/status HTTP/1.1\r\nHost: ncagent\r\n\r\n")
	over.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := readUntilClosed(over)
	if err != nil || len(got) != 0 {
		t.Fatalf("connection over the cap: got %q, %v; want closed without a byte", got, err)
	}
	held[0].Close()
	if _, err := NewClient(ts.path).Status(context.Background()); err != nil {
		t.Errorf("after a slot freed: %v", err)
	}
	if !eventually(func() bool { return strings.Contains(ts.logs.String(), "too many connections") }) {
		t.Errorf("no warning logged for the refused connection")
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	b := &fakeBackend{token: func(ctx context.Context, p Peer, r TokenRequest) (TokenResponse, error) {
		close(entered)
		<-release
		return fakeToken(r.Account, r.Scopes)
	}}
	ts := startServer(t, b, ServerOptions{})
	c := NewClient(ts.path)
	type result struct {
		tok TokenResponse
		err error
	}
	res := make(chan result, 1)
	go func() {
		tok, err := c.Token(context.Background(), TokenRequest{Account: "work"})
		res <- result{tok, err}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stopRun() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (stop: %v) while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := Dial(context.Background(), ts.path); !errors.Is(err, ErrNotRunning) {
		t.Errorf("dial during shutdown: got %v, want ErrNotRunning", err)
	}
	close(release)
	r := <-res
	if r.err != nil || r.tok.AccessToken != secretToken {
		t.Errorf("in-flight request: got %+v, %v; want the token", r.tok, r.err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("stop: got %v, want Run to return nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := os.Lstat(ts.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after shutdown: got %v, want it removed", err)
	}
	for i := 0; i < 2; i++ {
		if err := ts.srv.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
}

func TestCloseStopsRun(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	if _, err := NewClient(ts.path).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := ts.srv.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	select {
	case err := <-ts.returned:
		if err != nil {
			t.Errorf("Run after Close: got %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

func TestHandlerRequiresPeer(t *testing.T) {
	s := NewServer(&fakeBackend{}, ServerOptions{Logger: discardLogger()})
	rec := httptest.NewRecorder()
	s.serveHTTP(rec, httptest.NewRequest("POST", "/v1/token", strings.NewReader(`{}`)))
	if rec.Code != http.StatusForbidden {
		t.Errorf("got status %d, want 403", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), CodeForbidden) {
		t.Errorf("got body %q, want code %q", rec.Body.String(), CodeForbidden)
	}
}

func TestRefusedPeerLogged(t *testing.T) {
	b := &fakeBackend{}
	ts := startServer(t, b, ServerOptions{}, func(s *Server) {
		s.allow = func(p Peer) error { return fmt.Errorf("uid %d: %w", p.UID, ErrForeignPeer) }
	})
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: ncagent\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := readUntilClosed(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("refused peer got %q, want no byte", got)
	}
	if b.Calls() != 0 {
		t.Errorf("backend called %d times, want 0", b.Calls())
	}
	want := fmt.Sprintf("level=WARN msg=\"ipc: refused connection\" peer_uid=%d peer_pid=%d", os.Getuid(), os.Getpid())
	if !eventually(func() bool { return strings.Contains(ts.logs.String(), want) }) {
		t.Errorf("logs lack %q:\n%s", want, ts.logs.String())
	}
}

// readUntilClosed reads until the server closes c; a reset (the server
// closed with our request unread) counts as closed.
func readUntilClosed(c net.Conn) ([]byte, error) {
	got, err := io.ReadAll(c)
	if errors.Is(err, syscallECONNRESET) {
		err = nil
	}
	return got, err
}

func TestChunkedBodyTooLarge(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		io.WriteString(c, "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := strings.Repeat(" ", 8<<10)
		for i := 0; i < 10; i++ { // 80 KiB, no Content-Length to check early
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		io.WriteString(c, "0\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("got status %d, want 413", resp.StatusCode)
	}
}

func TestLoginCancelledByShutdown(t *testing.T) {
	started := make(chan struct{})
	b := &fakeBackend{login: func(ctx context.Context, p Peer, r LoginRequest, progress func(LoginEvent)) (LoginEvent, error) {
		progress(LoginEvent{Type: "waiting"})
		close(started)
		<-ctx.Done()
		return LoginEvent{}, ctx.Err()
	}}
	ts := startServer(t, b, ServerOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := NewClient(ts.path).Login(context.Background(), LoginRequest{Account: "work"}, nil)
		errc <- err
	}()
	<-started
	start := time.Now()
	ts.stop(t)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("shutdown took %v with a login in flight, want prompt", el)
	}
	err := <-errc
	var we *Error
	if !errors.As(err, &we) || !strings.Contains(we.Message, "shutting down") {
		t.Errorf("got %v, want an error event saying the agent is shutting down", err)
	}
}

// TestTooLargeBodyWrittenFirst plays a client that writes its whole
// request before reading (as Python's http.client does): it must be able
// to finish writing and read the 413, whether the size is declared or not.
func TestTooLargeBodyWrittenFirst(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	body := bytes.Repeat([]byte(" "), 1<<20)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	cases := []struct{ name, req string }{
		{"content-length", fmt.Sprintf("POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nContent-Length: %d\r\n\r\n%s", len(body), body)},
		{"chunked", "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("unix", ts.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatalf("writing the whole request: %v, want the server to read it", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			var e Error
			if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(got, &e) != nil || e.Code != CodeTooLarge {
				t.Errorf("got %d %q, want 413 too_large", resp.StatusCode, got)
			}
			if !resp.Close {
				t.Errorf("got a kept-alive answer, want Connection: close")
			}
		})
	}
}

// TestBackendPanic checks that a panicking backend gets its request a 500
// and leaves the agent serving.
func TestBackendPanic(t *testing.T) {
	b := &fakeBackend{token: func(_ context.Context, _ Peer, r TokenRequest) (TokenResponse, error) {
		if r.Account == "panic" {
			panic("backend bug")
		}
		return fakeToken(r.Account, r.Scopes)
	}}
	ts := startServer(t, b, ServerOptions{})
	resp, got := rawDo(t, ts.path, "POST", "/v1/token", []byte(`{"account":"panic"}`))
	var e Error
	if resp.StatusCode != http.StatusInternalServerError || json.Unmarshal(got, &e) != nil || e.Code != CodeInternal {
		t.Errorf("got %d %q, want 500 internal", resp.StatusCode, got)
	}
	c := NewClient(ts.path)
	defer c.Close()
	for i := range 3 {
		if tok, err := c.Token(context.Background(), TokenRequest{Account: "work"}); err != nil || tok.AccessToken != secretToken {
			t.Fatalf("token #%d after the panic: %v", i, err)
		}
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `msg="ipc: handler panicked"`) || !strings.Contains(logs, "backend bug") {
		t.Errorf("logs lack the panic:\n%s", logs)
	}
}
