// Package untrusted makes text a server sent fit to quote: in an error
// message, a log line or something shown to the user. Broker and agent
// both quote what identity providers and Nextcloud servers send; this is
// the one place that decides how.
package untrusted

import (
	"strings"
	"unicode"
)

// Text returns s without control characters, cut to at most n bytes on a
// rune boundary (an ellipsis marks a cut). Use it on anything a server sent
// before quoting it in a message or showing it to the user.
func Text(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
