package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/studio-b12/gowebdav"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/testutil"
)

// TestWebDAVClient drives a real WebDAV client library through the proxy,
// for both account kinds, with the account's server behind a path prefix
// or not.
func TestWebDAVClient(t *testing.T) {
	for _, kind := range []broker.Kind{broker.KindOIDC, broker.KindAppPassword} {
		t.Run(string(kind), func(t *testing.T) {
			w := newWorld(t, worldOptions{kind: kind})
			s := w.open(t)
			c := gowebdav.NewClient(s.URL()+"/remote.php/dav/files/"+s.Username(), s.Username(), s.Credential())
			if err := c.Connect(); err != nil { // PROPFIND
				t.Fatalf("connect: %v", err)
			}
			if err := c.Mkdir("docs", 0o755); err != nil { // MKCOL
				t.Fatalf("mkcol: %v", err)
			}
			body := bytes.Repeat([]byte("nextcloud "), 10000)          // larger than MaxReplayBody
			if err := c.Write("docs/a.txt", body, 0o644); err != nil { // PUT
				t.Fatalf("put: %v", err)
			}
			if err := c.Rename("docs/a.txt", "docs/b.txt", false); err != nil { // MOVE
				t.Fatalf("move: %v", err)
			}
			// A body of unknown length goes chunked and streams.
			req, _ := http.NewRequest("PUT", s.URL()+"/remote.php/dav/files/"+s.Username()+"/docs/c.txt", io.MultiReader(bytes.NewReader(body)))
			req.ContentLength = -1
			req.SetBasicAuth(s.Username(), s.Credential())
			if got := status(t, req); got != http.StatusCreated {
				t.Fatalf("chunked put: HTTP %d", got)
			}
			w.up.mu.Lock()
			if w.up.chunked != 1 {
				t.Errorf("chunked uploads upstream: got %d, want 1", w.up.chunked)
			}
			w.up.mu.Unlock()
			if got, err := c.Read("docs/c.txt"); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get of the chunked upload: %d bytes, %v; want %d bytes", len(got), err, len(body))
			}
			if err := c.Remove("docs/c.txt"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			got, err := c.Read("docs/b.txt") // GET
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("get after move: %d bytes, %v; want %d bytes", len(got), err, len(body))
			}
			list, err := c.ReadDir("docs") // PROPFIND Depth 1
			if err != nil || len(list) != 1 || list[0].Name() != "b.txt" {
				t.Fatalf("propfind docs: %v, %v; want [b.txt]", list, err)
			}
			if err := c.Remove("docs/b.txt"); err != nil { // DELETE
				t.Fatalf("delete: %v", err)
			}
			if _, err := c.Stat("docs/b.txt"); !gowebdav.IsErrNotFound(err) {
				t.Errorf("stat after delete: got %v, want not found", err)
			}

			w.up.mu.Lock()
			if len(w.up.dests) != 1 || !strings.HasPrefix(w.up.dests[0], w.nc.URL+"/remote.php/dav/files/") {
				t.Errorf("Destination upstream: got %q, want one on %s", w.up.dests, w.nc.URL)
			}
			want := "Bearer "
			if kind == broker.KindAppPassword {
				want = "Basic "
			}
			for i, a := range w.up.auths {
				if !strings.HasPrefix(a, want) || strings.Contains(a, s.Credential()) {
					t.Errorf("upstream request %d: Authorization is not the account's %scredential", i, want)
				}
			}
			if w.up.dead != 0 {
				t.Errorf("%d upstream requests carried a dead Bearer", w.up.dead)
			}
			w.up.mu.Unlock()
			if n := strings.Count(w.logs.String(), `msg="proxy: request" session=`+s.ID); n != len(w.up.auths) {
				t.Errorf("request log lines: got %d, want %d", n, len(w.up.auths))
			}
			for _, sec := range append(w.secrets(), s.Credential()) {
				if strings.Contains(w.logs.String(), sec) {
					t.Errorf("a credential is in the log")
				}
			}
		})
	}
}

// TestLocationRewritten: an absolute Location of the upstream is turned
// into the proxy's, so a client following it stays on the proxy.
func TestLocationRewritten(t *testing.T) {
	w := newWorld(t, worldOptions{kind: broker.KindAppPassword})
	s := w.open(t)
	req, _ := http.NewRequest("GET", s.URL()+"/", nil)
	req.SetBasicAuth(s.Username(), s.Credential())
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header.Get("Location"), "http://"+w.p.host()+"/login"; resp.StatusCode != http.StatusFound || got != want {
		t.Errorf("got HTTP %d Location %q, want 302 %q", resp.StatusCode, got, want)
	}
}

// TestPathPrefix keeps the server's path prefix in the session URL.
func TestPathPrefix(t *testing.T) {
	w := newWorld(t, worldOptions{prefix: "/nextcloud/"})
	s := w.open(t)
	if got, want := s.URL(), "http://"+w.p.host()+"/nextcloud"; got != want {
		t.Errorf("URL: got %q, want %q", got, want)
	}
}

func status(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRefusals: only the session's credential with its user name, on the
// proxy's own Host, while the session is open, gets through.
func TestRefusals(t *testing.T) {
	w := newWorld(t, worldOptions{kind: broker.KindAppPassword})
	s := w.open(t)
	root := s.URL() + "/remote.php/dav/files/" + s.Username() + "/"
	newReq := func(edit func(*http.Request)) *http.Request {
		req, _ := http.NewRequest("PROPFIND", root, nil)
		req.Header.Set("Depth", "0")
		req.SetBasicAuth(s.Username(), s.Credential())
		edit(req)
		return req
	}
	cases := []struct {
		name string
		edit func(*http.Request)
		want int
	}{
		{"session credential", func(*http.Request) {}, http.StatusMultiStatus},
		{"as bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+s.Credential()) }, http.StatusMultiStatus},
		{"wrong credential", func(r *http.Request) { r.SetBasicAuth(s.Username(), newCredential()) }, http.StatusUnauthorized},
		{"credential prefix", func(r *http.Request) { r.SetBasicAuth(s.Username(), s.Credential()[:42]) }, http.StatusUnauthorized},
		{"wrong user", func(r *http.Request) { r.SetBasicAuth("mallory", s.Credential()) }, http.StatusUnauthorized},
		{"no credential", func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized},
		{"foreign host", func(r *http.Request) { r.Host = "evil.example:" + strings.Split(w.p.host(), ":")[1] }, http.StatusMisdirectedRequest},
		{"localhost name", func(r *http.Request) { r.Host = "localhost:" + strings.Split(w.p.host(), ":")[1] }, http.StatusMisdirectedRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(w.up.auths)
			if got := status(t, newReq(c.edit)); got != c.want {
				t.Errorf("got HTTP %d, want %d", got, c.want)
			}
			if c.want != http.StatusMultiStatus && len(w.up.auths) != before {
				t.Errorf("a refused request reached the upstream")
			}
		})
	}
	s.Close()
	if got := status(t, newReq(func(*http.Request) {})); got != http.StatusUnauthorized {
		t.Errorf("after Close: got HTTP %d, want 401", got)
	}
	if len(w.p.Sessions()) != 0 {
		t.Errorf("sessions after Close: %v", w.p.Sessions())
	}
}

// TestRetryAfter401: a Bearer the upstream refuses is dropped and the
// request is sent again with a new one when it can be replayed; a large
// streamed body is not replayed and its 401 is passed on.
func TestRetryAfter401(t *testing.T) {
	w := newWorld(t, worldOptions{})
	s := w.open(t)
	file := s.URL() + "/remote.php/dav/files/" + s.Username() + "/f.txt"
	put := func(body []byte) int {
		req, _ := http.NewRequest("PUT", file, bytes.NewReader(body))
		req.SetBasicAuth(s.Username(), s.Credential())
		return status(t, req)
	}
	if got := put([]byte("one")); got != http.StatusCreated {
		t.Fatalf("first PUT: HTTP %d", got)
	}
	expireLast := func() {
		w.up.mu.Lock()
		tok := strings.TrimPrefix(w.up.auths[len(w.up.auths)-1], "Bearer ")
		w.up.mu.Unlock()
		if !w.idp.Expire(tok) {
			t.Fatal("could not expire the access token")
		}
	}
	expireLast()
	if got := put([]byte("two")); got != http.StatusNoContent && got != http.StatusCreated {
		t.Errorf("small PUT with a revoked token: got HTTP %d, want a retry that succeeds", got)
	}
	if !strings.Contains(w.logs.String(), "proxy: retrying with a new token after 401") {
		t.Errorf("no retry logged")
	}
	expireLast()
	big := bytes.Repeat([]byte("x"), DefaultMaxReplayBody+1)
	if got := put(big); got != http.StatusUnauthorized {
		t.Errorf("large PUT with a revoked token: got HTTP %d, want 401 passed on", got)
	}
	if got := put(big); got != http.StatusNoContent && got != http.StatusCreated {
		t.Errorf("large PUT after the token was dropped: got HTTP %d, want success", got)
	}
	if st := s.Status(); st.Requests != 4 || st.LastError == "" {
		t.Errorf("status: got %+v, want 4 requests and the 401 as last error", st)
	}
}

// helperCmd runs the test binary as a child program with the session's
// variables, as ncagent exec sets them.
func helperCmd(t *testing.T, ctx context.Context, bin, mode string, s *Session, prefix ...string) *exec.Cmd {
	argv := append(prefix, bin)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{
		envHelper + "=" + mode,
		"NEXTCLOUD_HOST=" + s.URL(),
		"NEXTCLOUD_USERNAME=" + s.Username(),
		"NEXTCLOUD_PASSWORD=" + s.Credential(),
		"NEXTCLOUD_APP_PASSWORD=" + s.Credential(),
	}
	return cmd
}

// TestChildOutlivesTokens: a child that reads its environment once keeps
// working for more than three access-token lifetimes, every request
// reaching the upstream with a live Bearer and never with the session
// credential; the child's environment holds no secret; once the session
// is closed its credential gets 401.
func TestChildOutlivesTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 11 seconds")
	}
	const lifespan = 3 * time.Second
	w := newWorld(t, worldOptions{lifespan: lifespan, ignoreScp: true})
	s := w.open(t)
	self, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := int(3*lifespan/time.Second) + 2
	cmd := helperCmd(t, ctx, self, fmt.Sprintf("poll %d", n), s)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if got, want := strings.TrimSpace(out.String()), fmt.Sprintf("ok=%d fail=0", n); got != want {
		t.Errorf("child: got %q, want %q", got, want)
	}
	w.up.mu.Lock()
	tokens := map[string]bool{}
	for i, a := range w.up.auths {
		if !strings.HasPrefix(a, "Bearer ") || strings.Contains(a, s.Credential()) {
			t.Errorf("upstream request %d: not the account's Bearer", i)
		}
		tokens[a] = true
	}
	if w.up.dead != 0 {
		t.Errorf("%d upstream requests carried a dead Bearer", w.up.dead)
	}
	if len(w.up.auths) < n || len(tokens) < 3 {
		t.Errorf("upstream saw %d requests with %d distinct tokens; want at least %d with 3", len(w.up.auths), len(tokens), n)
	}
	w.up.mu.Unlock()
	if len(environ) == 0 && runtimeLinux() {
		t.Errorf("could not read the child's environment")
	}
	for _, sec := range w.secrets() {
		if bytes.Contains(environ, []byte(sec)) {
			t.Errorf("the child's environment holds an account secret")
		}
	}
	s.Close()
	cmd = helperCmd(t, ctx, self, "once", s)
	if got, err := cmd.Output(); err != nil || strings.TrimSpace(string(got)) != "status=401" {
		t.Errorf("after the session closed: got %q (%v), want status=401", got, err)
	}
}

// TestForeignUIDRefused: a process of another user with the right
// credential is refused at the connection.
func TestForeignUIDRefused(t *testing.T) {
	if !runtimeLinux() {
		t.Skip("skipping: the peer-uid check is Linux only")
	}
	setpriv := testutil.Setpriv(t, "running a client")
	w := newWorld(t, worldOptions{kind: broker.KindAppPassword})
	s := w.open(t)
	dir := testutil.ShortDir(t)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "proxy.test")
	self, _ := os.Executable()
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		prefix []string
		want   string
	}{
		{nil, "status=207"},
		{[]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}, "error="},
	} {
		out, err := helperCmd(t, ctx, bin, "once", s, c.prefix...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("%v: got %q (%v), want %s…", c.prefix, out, err, c.want)
		}
	}
	if !strings.Contains(w.logs.String(), "peer socket belongs to uid 65534") {
		t.Errorf("refusal not logged:\n%s", w.logs.String())
	}
	if st := s.Status(); st.Requests != 1 {
		t.Errorf("session requests: got %d, want 1", st.Requests)
	}
}

// TestLockIfRewritten: a PUT to a locked file whose If header names the
// file by its proxy URL succeeds: the tagged list's URL is rewritten to
// the upstream's, which is what the server compares it with.
func TestLockIfRewritten(t *testing.T) {
	w := newWorld(t, worldOptions{kind: broker.KindAppPassword})
	s := w.open(t)
	file := s.URL() + "/remote.php/dav/files/" + s.Username() + "/locked.txt"
	send := func(method, body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(method, file, strings.NewReader(body))
		req.SetBasicAuth(s.Username(), s.Credential())
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := send("LOCK", `<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>`,
		map[string]string{"Timeout": "Second-60"})
	token := resp.Header.Get("Lock-Token")
	if resp.StatusCode/100 != 2 || token == "" {
		t.Fatalf("LOCK: HTTP %d, Lock-Token %q", resp.StatusCode, token)
	}
	if got := send("PUT", "x", nil).StatusCode; got != http.StatusLocked {
		t.Errorf("PUT without the lock token: got HTTP %d, want 423", got)
	}
	if got := send("PUT", "x", map[string]string{"If": "<" + file + "> (" + token + ")"}).StatusCode; got/100 != 2 {
		t.Errorf("PUT with If naming the proxy URL: got HTTP %d, want success", got)
	}
}
