package main

import (
	"errors"
	"html"
	"net/url"
	"os"
	"regexp"
	"strings"
)

var metaRefresh = regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]*)">`)

// followTrampoline plays a browser given agent.OpenURL's argument: a
// file:// page whose meta refresh forwards to the real URL. It returns
// that URL; any other argument is returned as it is.
func followTrampoline(arg string) (string, error) {
	if !strings.HasPrefix(arg, "file://") {
		return arg, nil
	}
	u, err := url.Parse(arg)
	if err != nil {
		return "", err
	}
	page, err := os.ReadFile(u.Path)
	if err != nil {
		return "", err
	}
	m := metaRefresh.FindSubmatch(page)
	if m == nil {
		return "", errors.New("the trampoline page has no refresh")
	}
	return html.UnescapeString(string(m[1])), nil
}
