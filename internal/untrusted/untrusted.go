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
// rune boundary, at the last space when that is in the second half (an
// ellipsis marks a cut). Use it on anything a server sent
// before quoting it in a message or showing it to the user.
func Text(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		// Cut at a word boundary when there is one in the second half: a
		// provider's text cut mid-word reads as a different word.
		cut := strings.ToValidUTF8(s[:n], "")
		if i := strings.LastIndexAny(cut, " \t"); i > n/2 && !strings.ContainsAny(s[len(cut):len(cut)+1], " \t") {
			cut = cut[:i]
		}
		s = strings.TrimRight(cut, " \t,;:") + "…"
	}
	return s
}
