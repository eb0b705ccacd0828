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
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/setup-page.png from the real-agent Chromium test")

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
// result into out. It fails t on any error.
func (c *cdp) call(t *testing.T, session, method string, params any, out any) {
	t.Helper()
	if err := c.do(session, method, params, out); err != nil {
		t.Fatal(err)
	}
}

// do is call for any goroutine: it returns the error.
func (c *cdp) do(session, method string, params any, out any) error {
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
		return fmt.Errorf("cdp %s: write: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("cdp %s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return fmt.Errorf("cdp %s: decode: %w", method, err)
			}
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cdp %s: no answer in 30s", method)
	}
}

// openTab opens url in a new tab, 760×820 CSS pixels in light mode, and
// returns the tab's session.
func (c *cdp) openTab(t *testing.T, url string) string {
	t.Helper()
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
	c.call(t, sess, "Page.navigate", map[string]any{"url": url}, nil)
	return sess
}

// waitEval evaluates expr in the tab until its value contains want.
func (c *cdp) waitEval(t *testing.T, session, what, expr, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		// An error is "not yet": the page may be navigating (the
		// progress page reloads itself).
		got, err := c.evalErr(session, expr)
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: got %q (error %v), want it to contain %q", what, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval runs a JavaScript expression in the page and returns its value as
// a string.
func (c *cdp) eval(t *testing.T, session, expr string) string {
	t.Helper()
	v, err := c.evalErr(session, expr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// evalErr is eval returning the error.
func (c *cdp) evalErr(session, expr string) (string, error) {
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	err := c.do(session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &r)
	return fmt.Sprint(r.Result.Value), err
}

// screenshot captures the whole page, at least the viewport.
func (c *cdp) screenshot(t *testing.T, session string) image.Image {
	t.Helper()
	var m struct {
		CSSContentSize    struct{ Width, Height float64 } `json:"cssContentSize"`
		CSSLayoutViewport struct {
			ClientWidth  float64 `json:"clientWidth"`
			ClientHeight float64 `json:"clientHeight"`
		} `json:"cssLayoutViewport"`
	}
	c.call(t, session, "Page.getLayoutMetrics", nil, &m)
	clip := map[string]any{"x": 0, "y": 0, "scale": 1,
		"width":  max(m.CSSContentSize.Width, m.CSSLayoutViewport.ClientWidth),
		"height": max(m.CSSContentSize.Height, m.CSSLayoutViewport.ClientHeight)}
	var r struct {
		Data string `json:"data"`
	}
	c.call(t, session, "Page.captureScreenshot", map[string]any{"format": "png", "clip": clip, "captureBeyondViewport": true}, &r)
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
// that reaches the network: every host name but 127.0.0.1 and localhost
// (where the agent's sign-in redirect lands) fails to resolve.
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
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
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
	sess := enterSetupPage(t, c, link)
	submitSetupForm(t, c, sess, map[string]string{"server": "https://cloud.example.com", "account": "work", "method": "auto"})
	c.waitEval(t, sess, "success", resultText, "Signed in to https://cloud.example.com as alice")

	logins, _ := b.calls()
	if len(logins) != 1 {
		t.Fatalf("Login calls: got %d, want 1", len(logins))
	}
	if got := logins[0]; got.Account != "work" || got.Server != "https://cloud.example.com" || got.Method != "" || !got.OpenBrowser {
		t.Errorf("Login request: got %+v, want account work, server https://cloud.example.com, automatic method, OpenBrowser", got)
	}
}

// resultText is the setup page's result line, once it shows one.
const resultText = `document.getElementById("result") && document.getElementById("result").innerText`

// enterSetupPage opens the setup page's one-time link in a new tab and
// waits for the form. The token must have been exchanged for a cookie
// that scripts cannot read, and have left the address bar.
func enterSetupPage(t *testing.T, c *cdp, link string) (session string) {
	t.Helper()
	sess := c.openTab(t, link)
	c.waitEval(t, sess, "the form", `document.readyState + " " + !!document.getElementById("server")`, "complete true")
	if got := c.eval(t, sess, "location.href"); strings.Contains(got, "token=") {
		t.Errorf("address after the exchange: got %q, want no token in it", got)
	}
	if got := c.eval(t, sess, "document.cookie"); got != "" {
		t.Errorf("document.cookie: got %q, want the session cookie hidden from scripts (HttpOnly)", got)
	}
	return sess
}

// submitSetupForm fills the form's fields by element id, submits it and
// waits for the progress page. It returns a screenshot of the filled form.
func submitSetupForm(t *testing.T, c *cdp, sess string, fields map[string]string) image.Image {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		idJS, _ := json.Marshal(id)
		valJS, _ := json.Marshal(fields[id])
		if got := c.eval(t, sess, fmt.Sprintf(`(() => { const e = document.getElementById(%s); if (!e) return "missing"; e.value = %s; return e.value; })()`, idJS, valJS)); got != fields[id] {
			t.Fatalf("form field %s: got %q, want %q", id, got, fields[id])
		}
	}
	// Show the filled fields that sit in a collapsed section.
	c.eval(t, sess, `document.querySelectorAll("details").forEach(d => { if ([...d.querySelectorAll("input")].some(i => i.value)) d.open = true; }), "ok"`)
	shot := c.screenshot(t, sess)
	c.eval(t, sess, `document.getElementById("submit").click(), "ok"`)
	c.waitEval(t, sess, "the progress page", `location.pathname + " " + document.body.innerText`, "/progress")
	return shot
}

// writeSideBySide saves two screenshots next to each other.
func writeSideBySide(path string, a, b image.Image) error {
	const gap = 16
	w := a.Bounds().Dx() + gap + b.Bounds().Dx()
	h := max(a.Bounds().Dy(), b.Bounds().Dy())
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0x9c, 0xa3, 0xaf, 0xff}}, image.Point{}, draw.Src)
	// Each page's own background (its bottom-left pixel) fills the space
	// below the shorter page.
	left := image.Rect(0, 0, a.Bounds().Dx(), h)
	right := image.Rect(a.Bounds().Dx()+gap, 0, w, h)
	draw.Draw(img, left, &image.Uniform{a.At(a.Bounds().Min.X, a.Bounds().Max.Y-1)}, image.Point{}, draw.Src)
	draw.Draw(img, right, &image.Uniform{b.At(b.Bounds().Min.X, b.Bounds().Max.Y-1)}, image.Point{}, draw.Src)
	draw.Draw(img, left, a, a.Bounds().Min, draw.Src)
	draw.Draw(img, right, b, b.Bounds().Min, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
