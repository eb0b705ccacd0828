package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzAuthenticate: whatever the Authorization header, a session is found
// only for its exact credential (as Bearer, or as the Basic password with
// the session's user name), and parsing never panics.
func FuzzAuthenticate(f *testing.F) {
	p := New(Options{})
	p.addr = "127.0.0.1:1"
	srv, _ := url.Parse("http://127.0.0.1:2/nc")
	s, err := p.Open(Spec{Account: "work"}, Upstream{Server: srv, Username: "alice"})
	if err != nil {
		f.Fatal(err)
	}
	cred := s.Credential()
	for _, seed := range []string{
		"Bearer " + cred,
		"bearer  " + cred + " ",
		"Basic " + basic("alice", cred),
		"Basic " + basic("bob", cred),
		"Basic " + basic("alice", cred+"x"),
		"Basic !!!",
		"Basic",
		"Bearer ",
		"Digest x",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Authorization": {header}}}
		got := p.authenticate(r)
		if got == nil {
			return
		}
		if got != s {
			t.Fatalf("got another session")
		}
		scheme, rest, _ := strings.Cut(header, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToLower(scheme) {
		case "bearer":
			if rest != cred {
				t.Fatalf("a Bearer other than the credential was accepted")
			}
		case "basic":
			user, pass, ok := (&http.Request{Header: http.Header{"Authorization": {"Basic " + rest}}}).BasicAuth()
			if !ok || user != "alice" || pass != cred {
				t.Fatalf("Basic credentials other than alice and the credential were accepted")
			}
		default:
			t.Fatalf("scheme %q accepted", scheme)
		}
	})
}
