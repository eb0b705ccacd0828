package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/setup-page.png from the Chromium test")

// cdp is a minimal Chrome DevTools Protocol client over
// --remote-debugging-pipe: NUL-terminated JSON messages, commands on the
// browser's fd 3, replies and events on its fd 4.
type cdp struct {
	w io.Writer

	mu      sync.Mutex // guards nextID, waiting
	nextID  int
	waiting map[int]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func newCDP(w io.Writer, r io.Reader) *cdp {
	c := &cdp{w: w, waiting: map[int]chan cdpReply{}}
	go func() {
		br := bufio.NewReader(r)
		for {
			msg, err := br.ReadBytes(0)
			if err != nil {
				return
			}
			var m struct {
				ID int `json:"id"`
				cdpReply
			}
			if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
				continue // an event
			}
			c.mu.Lock()
			ch := c.waiting[m.ID]
			delete(c.waiting, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
		}
	}()
	return c
}

// call sends one command (to a page when session is set) and decodes the
// result into out.
func (c *cdp) call(t *testing.T, session, method string, params any, out any) {
	t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpReply, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, _ := json.Marshal(msg)
	if _, err := c.w.Write(append(b, 0)); err != nil {
		t.Fatalf("cdp %s: write: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			t.Fatalf("cdp %s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				t.Fatalf("cdp %s: decode: %v", method, err)
			}
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("cdp %s: no answer", method)
	}
}

// eval runs a JavaScript expression in the page and returns its value as
// a string.
func (c *cdp) eval(t *testing.T, session, expr string) string {
	t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	c.call(t, session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	return fmt.Sprint(r.Result.Value)
}

func (c *cdp) screenshot(t *testing.T, session string) image.Image {
	t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	c.call(t, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// startChromium runs headless Chromium with a DevTools pipe and nothing
// that reaches the network: every host name but 127.0.0.1 fails to resolve.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian: apt-get install chromium); skipping the browser test")
	}
	toBrowserR, toBrowserW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromBrowserR, fromBrowserW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(),
		"--remote-debugging-pipe",
		"--no-default-browser-check", "--disable-extensions", "--disable-default-apps",
		"--disable-domain-reliability", "--disable-breakpad", "--metrics-recording-only",
		"--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--password-store=basic", "--use-mock-keychain", // never touch the test keyring
		"--hide-scrollbars", "--force-color-profile=srgb", "--lang=en-US",
		"about:blank",
	)
	cmd.ExtraFiles = []*os.File{toBrowserR, fromBrowserW} // fd 3, fd 4
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toBrowserR.Close()
	fromBrowserW.Close()
	t.Cleanup(func() {
		toBrowserW.Close()
		cancel()
		cmd.Wait()
		fromBrowserR.Close()
		if t.Failed() {
			t.Logf("chromium stderr:\n%s", stderr.String())
		}
	})
	return newCDP(toBrowserW, fromBrowserR)
}

// TestSetupPageInChromium fills and submits the setup form in a real
// headless Chromium and sees the sign-in succeed.
func TestSetupPageInChromium(t *testing.T) {
	b := newFakeBackend()
	b.loginFn = func(ctx context.Context, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
		progress(ipc.LoginEvent{Type: "method", Method: "app-password", Reason: "the server has no OpenID Connect provider; using Login Flow v2"})
		progress(ipc.LoginEvent{Type: "open_url", URL: req.Server + "/index.php/login/v2/flow"})
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ipc.LoginEvent{}, ctx.Err()
		}
		b.setAccount(ipc.AccountStatus{Name: req.Account, Kind: "app-password", Server: req.Server, User: "alice", State: stateSignedIn})
		return ipc.LoginEvent{Type: "done", Account: req.Account, Method: "app-password", State: stateSignedIn, User: "alice",
			Message: "signed in to " + req.Server + " as alice"}, nil
	}
	s := NewSetupServer(b, SetupOptions{DoneGrace: 5 * time.Second})
	link, err := s.Start(t.Context())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()

	c := startChromium(t)
	var target struct {
		TargetID string `json:"targetId"`
	}
	c.call(t, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	c.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	sess := att.SessionID
	c.call(t, sess, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 760, "height": 820, "deviceScaleFactor": 1, "mobile": false}, nil)
	c.call(t, sess, "Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": "light"}}}, nil)
	c.call(t, sess, "Page.enable", nil, nil)
	c.call(t, sess, "Page.navigate", map[string]any{"url": link}, nil)

	waitEval := func(what, expr, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := c.eval(t, sess, expr)
			if strings.Contains(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: got %q, want it to contain %q", what, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The token was exchanged for a cookie and left the address bar.
	waitEval("the form", `document.readyState + " " + location.href + " " + !!document.getElementById("server")`, "complete")
	if got := c.eval(t, sess, "location.href"); strings.Contains(got, "token=") {
		t.Errorf("address after the exchange: got %q, want no token in it", got)
	}
	if got := c.eval(t, sess, "document.cookie"); got != "" {
		t.Errorf("document.cookie: got %q, want the session cookie hidden from scripts (HttpOnly)", got)
	}
	c.eval(t, sess, `(() => {
		document.getElementById("server").value = "https://cloud.example.com";
		document.getElementById("account").value = "work";
		document.getElementById("method").value = "auto";
		return "ok";
	})()`)
	form := c.screenshot(t, sess)
	c.eval(t, sess, `document.getElementById("submit").click(), "ok"`)

	waitEval("progress page", `location.pathname + " " + document.body.innerText`, "/progress")
	waitEval("success", `document.getElementById("result") && document.getElementById("result").innerText`,
		"Signed in to https://cloud.example.com as alice")
	done := c.screenshot(t, sess)

	logins, _ := b.calls()
	if len(logins) != 1 {
		t.Fatalf("Login calls: got %d, want 1", len(logins))
	}
	if got := logins[0]; got.Account != "work" || got.Server != "https://cloud.example.com" || got.Method != "" || !got.OpenBrowser {
		t.Errorf("Login request: got %+v, want account work, server https://cloud.example.com, automatic method, OpenBrowser", got)
	}

	out := filepath.Join(t.TempDir(), "setup-page.png")
	if *updateScreenshots {
		out = filepath.Join("..", "docs", "setup-page.png")
	}
	if err := writeSideBySide(out, form, done); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}

// writeSideBySide saves two screenshots next to each other.
func writeSideBySide(path string, a, b image.Image) error {
	const gap = 16
	w := a.Bounds().Dx() + gap + b.Bounds().Dx()
	h := max(a.Bounds().Dy(), b.Bounds().Dy())
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0x9c, 0xa3, 0xaf, 0xff}}, image.Point{}, draw.Src)
	draw.Draw(img, a.Bounds(), a, a.Bounds().Min, draw.Src)
	draw.Draw(img, b.Bounds().Add(image.Pt(a.Bounds().Dx()+gap, 0)), b, b.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
