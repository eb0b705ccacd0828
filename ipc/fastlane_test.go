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
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests below check the fast lane the benchmarks measure: it must
// answer every request exactly as net/http does (FuzzFastLane compares
// the two on any input), serve the requests it is meant to serve, and
// hand everything else over; and the client's own transport.

// laneServers starts two servers with the same fake backend: one with the
// fast lane, one handing every connection to net/http. handoffs counts the
// connections the first handed to net/http.
func laneServers(tb testing.TB) (fast, slow *testServer, handoffs *atomic.Int64) {
	handoffs = new(atomic.Int64)
	opts := ServerOptions{Logger: discardLogger()}
	// net/http cancels a request whose client closed its side, which turns
	// a plain backend error into "request cancelled" when the close won
	// the race; the fast lane does not watch the client. Answer with wire
	// errors only, so that the comparison is deterministic.
	backend := func() *fakeBackend {
		return &fakeBackend{token: func(_ context.Context, _ Peer, r TokenRequest) (TokenResponse, error) {
			if r.Account == "boom" {
				return TokenResponse{}, &Error{Code: CodeInternal, Message: "backend exploded", Account: r.Account}
			}
			return fakeToken(r.Account, r.Scopes)
		}}
	}
	fast = startServer(tb, backend(), opts, func(s *Server) {
		s.opts.Socket = "same" // status reports it
		cc := s.hs.ConnContext
		s.hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			handoffs.Add(1)
			return cc(ctx, c)
		}
	})
	slow = startServer(tb, backend(), opts, func(s *Server) {
		s.opts.Socket = "same"
		s.noFastLane = true
	})
	return fast, slow, handoffs
}

// exchangeRaw sends req on a new connection, closes the write side, and
// returns all the server sent until it closed, with Date values blanked.
func exchangeRaw(tb testing.TB, path string, req []byte) []byte {
	tb.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		// The server may answer and close before reading everything.
		c.Write(req)
		c.(*net.UnixConn).CloseWrite()
	}()
	got, err := readUntilClosed(c)
	if err != nil {
		tb.Fatalf("reading answer: %v", err)
	}
	return dateValue.ReplaceAll(got, []byte("Date: -\r\n"))
}

var dateValue = regexp.MustCompile(`Date: [^\r\n]*\r\n`)

// laneCases are raw requests; fast says whether the fast lane serves the
// whole connection (or hands it over).
var laneCases = []struct {
	name string
	req  string
	fast bool
}{
	{"token", post("/v1/token", `{"account":"work","scopes":["openid"]}  `), true},
	{"token no body", "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\n\r\n", true},
	{"token connection close", "POST /v1/token HTTP/1.1\r\nHost: ncagent\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}", true},
	{"field names in any case", "POST /v1/token HTTP/1.1\r\nhOST: ncagent\r\ncontent-LENGTH: 2\r\nX-Other:\t a b \t\r\n\r\n{}", true},
	{"empty host", "GET /v1/status HTTP/1.1\r\nHost:\r\n\r\n", true},
	{"status", "GET /v1/status HTTP/1.1\r\nHost: ncagent\r\n\r\n", true},
	{"status zero length", "GET /v1/status HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n", true},
	{"pipelined", "GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\nPOST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\n{\"account\":\"nope\"}POST /v1/revoke HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\n{\"account\":\"work\"}", true},
	{"exchange", post("/v1/exchange", `{"subject_token":"`+subjectSecret+`"}`), true},
	{"CRLF after POST", post("/v1/token", "{}") + "\r\n" + post("/v1/token", "{}"), true},
	{"4 CRLF after POST", post("/v1/token", "{}") + "\r\n\r\n\r\n" + post("/v1/token", "{}"), false},
	{"CRLF after GET", "GET /v1/status HTTP/1.1\r\nHost: a\r\n\r\n\r\n" + post("/v1/token", "{}"), false},
	{"3 bytes after a request", post("/v1/token", "{}") + "POS", true},
	{"4 bytes after a request", post("/v1/token", "{}") + "POST", false},
	{"backend error", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\n{\"account\":\"boom\"}", true},
	{"malformed JSON", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n{\"account\":", true},
	{"exchange empty", "POST /v1/exchange HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true},
	{"body over the buffer", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 60016\r\n\r\n{\"pad\":\"" + strings.Repeat("x", 60006) + "\"}", true},
	{"body at the buffer's end", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 4020\r\n\r\n{\"pad\":\"" + strings.Repeat("y", 4010) + "\"}", true},

	{"then login", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}POST /v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\n{\"account\":\"work\"}", false},
	{"login", "POST /v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 18\r\n\r\n{\"account\":\"work\"}", false},
	{"no host", "POST /v1/token HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", false},
	{"two hosts", "POST /v1/token HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}", false},
	{"odd host", "POST /v1/token HTTP/1.1\r\nHost: a b\r\nContent-Length: 2\r\n\r\n{}", false},
	{"chunked", "POST /v1/token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
	{"length and chunked", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
	{"two lengths", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", false},
	{"signed length", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n{}", false},
	{"length over 64 KiB", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n{}", false},
	{"expect", "POST /v1/token HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", false},
	{"bare LF", "POST /v1/token HTTP/1.1\nHost: a\nContent-Length: 2\n\n{}", false},
	{"obs-fold", "POST /v1/token HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\n{}", false},
	{"space before colon", "POST /v1/token HTTP/1.1\r\nHost : a\r\nContent-Length: 2\r\n\r\n{}", false},
	{"control byte in value", "POST /v1/token HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.0", "POST /v1/token HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", false},
	{"query", "POST /v1/token?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}", false},
	{"wrong method", "GET /v1/token HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"unknown path", "GET /v2/status HTTP/1.1\r\nHost: a\r\n\r\n", false},
	{"status with body", "GET /v1/status HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}", false},
	{"head too large", "POST /v1/token HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", 5000) + "\r\nContent-Length: 2\r\n\r\n{}", false},
	{"truncated head", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Le", false},
	{"truncated body", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n{\"account\":", false},
	{"truncated large body", "POST /v1/token HTTP/1.1\r\nHost: a\r\nContent-Length: 9000\r\n\r\n{\"pad\":\"" + strings.Repeat("z", 6000), false},
	{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", false},
}

// post returns a well-formed POST request with body.
func post(path, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: ncagent\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
}

func TestFastLaneMatchesNetHTTP(t *testing.T) {
	fast, slow, handoffs := laneServers(t)
	for _, tc := range laneCases {
		t.Run(tc.name, func(t *testing.T) {
			before := handoffs.Load()
			got := exchangeRaw(t, fast.path, []byte(tc.req))
			want := exchangeRaw(t, slow.path, []byte(tc.req))
			if !bytes.Equal(got, want) {
				t.Errorf("fast lane answered differently from net/http:\ngot  %q\nwant %q", got, want)
			}
			if len(got) == 0 && !strings.HasPrefix(tc.name, "truncated") {
				t.Errorf("got no answer, want one")
			}
			if handed := handoffs.Load() != before; handed == tc.fast {
				t.Errorf("handed to net/http: got %v, want %v", handed, !tc.fast)
			}
		})
	}
}

// FuzzFastLane checks that the fast lane answers any bytes exactly as
// net/http does.
func FuzzFastLane(f *testing.F) {
	for _, tc := range laneCases {
		if len(tc.req) < 4096 {
			f.Add([]byte(tc.req))
		}
	}
	fast, slow, _ := laneServers(f)
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) > 8<<10 {
			return
		}
		got := exchangeRaw(t, fast.path, req)
		want := exchangeRaw(t, slow.path, req)
		if !bytes.Equal(got, want) {
			t.Errorf("fast lane answered differently from net/http:\ngot  %q\nwant %q", got, want)
		}
	})
}

// countConns makes ts's server count the connections it accepts.
func countConns(n *atomic.Int64) func(*Server) {
	return func(s *Server) {
		pc := s.peerCred
		s.peerCred = func(c net.Conn) (Peer, error) {
			n.Add(1)
			return pc(c)
		}
	}
}

func TestClientKeepAlive(t *testing.T) {
	var conns atomic.Int64
	ts := startServer(t, nil, ServerOptions{}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		tok, err := c.Token(ctx, TokenRequest{Account: "work"})
		if err != nil || tok.AccessToken != secretToken {
			t.Fatalf("token #%d: got an unexpected answer, err %v", i, err)
		}
		if _, err := c.Status(ctx); err != nil {
			t.Fatalf("status #%d: %v", i, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("connections for 10 sequential requests: got %d, want 1", got)
	}
}

func TestClientRetriesClosedIdleConn(t *testing.T) {
	var conns atomic.Int64
	ts := startServer(t, nil, ServerOptions{IdleTimeout: 50 * time.Millisecond}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatal(err)
	}
	// The server closes the idle connection the client keeps.
	closed := func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.conns) == 0
	}
	for deadline := time.Now().Add(10 * time.Second); !closed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not close the idle connection within 10s")
		}
	}
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatalf("token after the server closed the idle connection: got %v, want a token", err)
	}
	if got := conns.Load(); got != 2 {
		t.Errorf("connections: got %d, want 2", got)
	}
}

func TestClientAfterServerStopped(t *testing.T) {
	ts := startServer(t, nil, ServerOptions{})
	c := NewClient(ts.path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Token(ctx, TokenRequest{}); err != nil {
		t.Fatal(err)
	}
	ts.stop(t)
	_, err := c.Token(ctx, TokenRequest{})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("got %v, want ErrNotRunning", err)
	}
}

func TestClientContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	b := &fakeBackend{token: func(_ context.Context, _ Peer, r TokenRequest) (TokenResponse, error) {
		if r.Account == "slow" {
			<-release
		}
		return fakeToken(r.Account, r.Scopes)
	}}
	var conns atomic.Int64
	ts := startServer(t, b, ServerOptions{}, countConns(&conns))
	c := NewClient(ts.path)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := c.Token(ctx, TokenRequest{Account: "slow"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the deadline: got %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.Token(ctx, TokenRequest{Account: "slow"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}

	// A connection cut short is not reused: the next request gets a new one.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if tok, err := c.Token(ctx, TokenRequest{Account: "work"}); err != nil || tok.AccessToken != secretToken {
		t.Fatalf("token after cancelled requests: got err %v", err)
	}
	if got := conns.Load(); got != 3 {
		t.Errorf("connections: got %d, want 3", got)
	}
}

// FuzzFastJSON checks the fast JSON paths against encoding/json: a body
// the fast decoders take decodes to what decodeBody and json.Unmarshal
// give, and every value encodes to what json.Marshal gives.
func FuzzFastJSON(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/requests: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "work", int64(0))
	}
	resp, _ := fakeToken("work", Scopes{"openid", "files"})
	seed, _ := json.Marshal(resp)
	f.Add(seed, "a<b>&c\u2028\xff\"\\\n", int64(1893553445))
	f.Add([]byte(`{"expires_at":"2030-01-02T03:04:05.5Z","expires_in":-0,"scope":""}`), "é", int64(-62135596801))
	f.Add([]byte(` {"scopes":[ "a" ,"b"],"min_valid_seconds":012} `), "", int64(253402300800))
	f.Add([]byte(`{"scopes":"  a b ","ACCOUNT":"x","account":"y","account":"z"}`), "x", int64(1e18))
	f.Add([]byte(`{"account":"<&>"}`), "<a&b>", int64(1))
	for _, c := range `"\<>&` + "\x00\x1f\x7f\x80" {
		f.Add([]byte(`{}`), "a"+string(c)+"b", int64(2))
	}
	f.Add([]byte(`{"":}`), "", int64(0))
	f.Add([]byte(`{"account":}`), "", int64(0))

	f.Fuzz(func(t *testing.T, body []byte, s string, sec int64) {
		var fastReq, slowReq TokenRequest
		if decodeTokenRequest(body, &fastReq) {
			if e := decodeBody(body, &slowReq, true); e != nil {
				t.Fatalf("fast decoder took %q, decodeBody refused it: %v", body, e)
			}
			if !reflect.DeepEqual(fastReq, slowReq) {
				t.Fatalf("request %q: got %#v, want %#v", body, fastReq, slowReq)
			}
		}
		var fastResp, slowResp TokenResponse
		if decodeTokenResponse(body, &fastResp) {
			if err := json.Unmarshal(body, &slowResp); err != nil {
				t.Fatalf("fast decoder took %q, encoding/json refused it: %v", body, err)
			}
			if !reflect.DeepEqual(fastResp, slowResp) {
				t.Fatalf("response %q: got %#v, want %#v", body, fastResp, slowResp)
			}
		}

		// Encoding: values decoded by encoding/json, and values built
		// from the fuzzed string and time.
		var reqs []TokenRequest
		if decodeBody(body, &slowReq, true) == nil {
			reqs = append(reqs, slowReq)
		}
		reqs = append(reqs, TokenRequest{Account: s, Scopes: Scopes{s, "x"}, Audience: s, MinValidSeconds: sec, ClientHint: s},
			TokenRequest{Scopes: Scopes{}})
		for _, r := range reqs {
			checkEncoding(t, &r)
		}
		var resps []TokenResponse
		if json.Unmarshal(body, &slowResp) == nil {
			resps = append(resps, slowResp)
		}
		when := time.Unix(sec%(1<<40), sec%1e9)
		resps = append(resps,
			TokenResponse{Account: s, TokenType: s, AccessToken: s, Authorization: s, ExpiresAt: when.UTC(),
				ExpiresIn: sec, Scope: s, Username: s, Server: s, IssuedTokenType: s},
			TokenResponse{ExpiresAt: when.In(time.FixedZone("x", 3600))})
		for _, r := range resps {
			checkEncoding(t, &r)
		}
	})
}

// checkEncoding fails t when appendJSON and json.Marshal disagree on v.
func checkEncoding(t *testing.T, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, err := appendJSON([]byte("prefix"), v)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("encoding %#v: got error %v, want %v", v, err, wantErr)
	}
	if err == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("encoding %#v: got %q, want %q", v, got[len("prefix"):], want)
	}
}

// TestClientFraming serves canned answers in the framings net/http may
// use and checks that the client reads each the same, reusing the
// connection only when the answer allows it.
func TestClientFraming(t *testing.T) {
	tok, _ := fakeToken("work", Scopes{"openid"})
	doc, _ := json.Marshal(tok)
	big, _ := json.Marshal(StatusResponse{Version: strings.Repeat("v", 70<<10), Accounts: []AccountStatus{}})
	chunked := func(b []byte) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(b), b) }
	cases := []struct {
		name    string
		answer  string
		reuse   bool
		wantErr string
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(doc)) + "\r\n\r\n" + string(doc), true, ""},
		{"no reason, odd case", "HTTP/1.1 200\r\ncontent-length:" + fmt.Sprint(len(doc)) + "\r\nX-A: b\r\n\r\n" + string(doc), true, ""},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " + fmt.Sprint(len(doc)) + "\r\n\r\n" + string(doc), false, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(doc), true, ""},
		{"until close", "HTTP/1.0 200 OK\r\n\r\n" + string(doc), false, ""},
		{"over 64 KiB", "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(big)) + "\r\n\r\n" + string(big), true, ""},
		{"error", "HTTP/1.1 409 Conflict\r\nContent-Length: 43\r\n\r\n{\"error\":\"needs_login\",\"message\":\"sign in\"}", true, "needs_login"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ", false, "Content-Length"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(shortDir(t), "s.sock")
			ln, err := Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Add(1)
					go func() {
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							req, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							io.Copy(io.Discard, req.Body)
							if _, err := io.WriteString(c, tc.answer); err != nil || strings.HasPrefix(tc.answer, "HTTP/1.0") {
								return
							}
						}
					}()
				}
			}()
			c := NewClient(path)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for range 2 {
				var err error
				if tc.name == "over 64 KiB" {
					var st StatusResponse
					st, err = c.Status(ctx)
					if err == nil && len(st.Version) != 70<<10 {
						t.Fatalf("status version: got %d bytes, want %d", len(st.Version), 70<<10)
					}
				} else {
					var got TokenResponse
					got, err = c.Token(ctx, TokenRequest{})
					if err == nil && !reflect.DeepEqual(got, tok) {
						t.Fatalf("got %+v, want %+v", got, tok)
					}
				}
				if tc.wantErr == "" && err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
			}
			want := int64(2)
			if tc.reuse {
				want = 1
			}
			if got := conns.Load(); got != want {
				t.Errorf("connections for 2 requests: got %d, want %d", got, want)
			}
		})
	}
}

// FuzzResponseHead checks the client's head parser against
// http.ReadResponse: a head it takes must mean the same to net/http.
func FuzzResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: keep-alive, close\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 404\r\ncontent-length:  0 \r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n X: y\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 \n0\r\nContent-Length:0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		i := bytes.Index(head, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		head = head[:i+4]
		status, length, closing, ok := parseResponseHead(head)
		if !ok {
			return
		}
		r, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
		if err != nil {
			t.Fatalf("head %q: parsed, but net/http refuses it: %v", head, err)
		}
		if r.StatusCode != status || r.ContentLength != int64(length) || r.Close != closing {
			t.Fatalf("head %q: got status %d length %d close %v, want %d %d %v", head, status, length, closing, r.StatusCode, r.ContentLength, r.Close)
		}
	})
}
