package agent

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// openerGrace is how long OpenURL waits for the opener to fail before it
// assumes the browser is on its way. Openers such as xdg-open may keep
// running as long as the browser does.
const openerGrace = 3 * time.Second

// OpenURL opens rawURL in the user's web browser: xdg-open on Linux and the
// BSDs (only inside a graphical session), open on macOS, the URL protocol
// handler (rundll32 url.dll,FileProtocolHandler) on Windows. The URL must
// be an absolute http or https URL. It never appears in the opener's
// arguments, which every user of the machine can read: the opener gets the
// file:// URL of a private trampoline page that forwards the browser to it
// (see writeTrampoline), as a single argument, never through a shell, and
// a minimal environment (openerEnv). Call ForgetURL once the URL was used.
// OpenURL returns an error wrapping
// ErrNoBrowser when there is no way to open a browser here, or the
// opener's error when it fails within a few seconds; it never blocks longer
// than that. It is safe for concurrent use.
func OpenURL(rawURL string) error {
	if err := checkWebURL(rawURL); err != nil {
		return fmt.Errorf("open url: %w", err)
	}
	if _, _, err := opener(rawURL); err != nil {
		return fmt.Errorf("open url: %w", err)
	}
	page, err := writeTrampoline(rawURL)
	if err != nil {
		return fmt.Errorf("open url: %w", err)
	}
	name, args, err := opener(page)
	if err == nil {
		err = runOpener(name, args)
	}
	if err != nil {
		ForgetURL(rawURL)
		return fmt.Errorf("open url: %w", err)
	}
	return nil
}

// checkWebURL accepts absolute http and https URLs with a host, the only
// kind of URL ncagent sends the user's browser to.
func checkWebURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("not an http(s) URL (scheme %q)", u.Scheme)
	}
	if strings.ContainsAny(rawURL, " \t\r\n\x00") {
		return errors.New("URL contains whitespace or control characters")
	}
	return nil
}

// runOpener starts the opener and waits up to openerGrace for it to fail.
// An opener still running after that is left to finish on its own (and
// reaped when it does).
func runOpener(name string, args []string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%w: %s not found", ErrNoBrowser, name)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = openerEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t := time.NewTimer(openerGrace)
	defer t.Stop()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	case <-t.C:
		return nil
	}
}
