package agent

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The URLs ncagent opens carry secrets of the moment: the setup page's
// one-time token, an authorization request's state, nonce and PKCE
// challenge. Another user of the machine can read every process's argument
// list (/proc/<pid>/cmdline, ps), so such a URL never goes to the opener as
// an argument. OpenURL writes it into a trampoline instead, a small HTML
// page that forwards the browser to it, 0600 in a 0700 directory of the
// user (Jupyter does the same with its "open file"), and hands the opener
// that page's file:// URL, which names nothing secret.
//
// A trampoline is deleted when ForgetURL is told its URL was used (the
// link redeemed, the sign-in over), after trampolineTTL, and by the next
// OpenURL of any ncagent process when an earlier one left it behind.

// trampolineTTL bounds a trampoline's life: long enough for a cold browser
// start, short enough that a forgotten one does not linger.
const trampolineTTL = 2 * time.Minute

// trampolines are this process's trampoline files, by the URL they forward
// to.
var trampolines = struct {
	mu    sync.Mutex // guards files
	files map[string][]string
}{files: map[string][]string{}}

var trampolinePage = template.Must(template.New("open").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url={{.}}">
<title>ncagent</title></head>
<body><p>Opening <a href="{{.}}">the ncagent page</a>…</p>
<script>window.location.replace({{.}})</script>
</body></html>
`))

// trampolineDir is the 0700 directory for trampolines: under
// $XDG_RUNTIME_DIR (memory, per user, cleared at logout) when there is
// one, else under the user cache dir.
func trampolineDir() (string, error) {
	base := os.Getenv("XDG_RUNTIME_DIR")
	if base == "" || !filepath.IsAbs(base) {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		base = d
	}
	parent := filepath.Join(base, "ncagent")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	dir := filepath.Join(parent, "open")
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	if err := checkPrivateDir(dir, false); err != nil {
		return "", err
	}
	return dir, nil
}

// writeTrampoline writes a page forwarding to rawURL and returns its
// file:// URL. The page is removed after trampolineTTL or on ForgetURL.
func writeTrampoline(rawURL string) (string, error) {
	dir, err := trampolineDir()
	if err != nil {
		return "", fmt.Errorf("trampoline dir: %w", err)
	}
	sweepTrampolines(dir)
	var page bytes.Buffer
	if err := trampolinePage.Execute(&page, template.URL(rawURL)); err != nil {
		return "", fmt.Errorf("trampoline page: %w", err)
	}
	f, err := os.CreateTemp(dir, "open-*.html") // 0600
	if err != nil {
		return "", fmt.Errorf("trampoline: %w", err)
	}
	name := f.Name()
	_, werr := f.Write(page.Bytes())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return "", fmt.Errorf("trampoline: %w", werr)
	}
	trampolines.mu.Lock()
	trampolines.files[rawURL] = append(trampolines.files[rawURL], name)
	trampolines.mu.Unlock()
	time.AfterFunc(trampolineTTL, func() { forgetFile(rawURL, name) })
	return fileURL(name), nil
}

// fileURL is the file:// URL of an absolute path, also on Windows
// (file:///C:/Users/…).
func fileURL(path string) string {
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

// ForgetURL deletes the trampolines this process wrote for rawURL: call it
// once the URL was used (a one-time link redeemed, a sign-in ended). It is
// safe for concurrent use, and a no-op for URLs never opened.
func ForgetURL(rawURL string) {
	trampolines.mu.Lock()
	files := trampolines.files[rawURL]
	delete(trampolines.files, rawURL)
	trampolines.mu.Unlock()
	for _, f := range files {
		os.Remove(f)
	}
}

// forgetFile deletes one trampoline of rawURL.
func forgetFile(rawURL, name string) {
	trampolines.mu.Lock()
	files := trampolines.files[rawURL]
	for i, f := range files {
		if f == name {
			files = append(files[:i:i], files[i+1:]...)
			break
		}
	}
	if len(files) == 0 {
		delete(trampolines.files, rawURL)
	} else {
		trampolines.files[rawURL] = files
	}
	trampolines.mu.Unlock()
	os.Remove(name)
}

// sweepTrampolines removes trampolines older than trampolineTTL, left by
// a process that ended before its timer ran.
func sweepTrampolines(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "open-") || !strings.HasSuffix(e.Name(), ".html") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > trampolineTTL {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
