package ipc

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newRequest returns a fresh request value for each decodable type.
var requestTypes = []struct {
	name    string
	new     func() interface{ validate() *Error }
	emptyOK bool
}{
	{"token", func() interface{ validate() *Error } { return new(TokenRequest) }, true},
	{"exchange", func() interface{ validate() *Error } { return new(ExchangeRequest) }, false},
	{"login", func() interface{ validate() *Error } { return new(LoginRequest) }, false},
	{"revoke", func() interface{ validate() *Error } { return new(RevokeRequest) }, false},
}

// FuzzDecodeRequest drives the request decoding path (including Scopes'
// UnmarshalJSON and validation) for every request type. Properties: no
// panic; a refusal is invalid_request with a message that does not echo a
// marker planted in the input; an accepted body survives an encode/decode
// round trip unchanged.
func FuzzDecodeRequest(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/requests: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, rt := range requestTypes {
			v := rt.new()
			e := decodeBody(body, v, rt.emptyOK)
			if e == nil {
				e = v.validate()
			}
			if e != nil {
				if e.Code != CodeInvalidRequest || e.Message == "" {
					t.Fatalf("%s: got %+v, want invalid_request with a message", rt.name, e)
				}
				if strings.Contains(e.Message, "SECRETMARK") {
					t.Fatalf("%s: message %q echoes the input", rt.name, e.Message)
				}
				continue
			}
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: encoding an accepted request: %v", rt.name, err)
			}
			again := rt.new()
			if e := decodeBody(enc, again, rt.emptyOK); e != nil {
				t.Fatalf("%s: re-decoding %s: %v", rt.name, enc, e)
			}
			enc2, _ := json.Marshal(again)
			if !bytes.Equal(enc, enc2) {
				t.Fatalf("%s: round trip changed %s into %s", rt.name, enc, enc2)
			}
		}
	})
}

func TestDecodeSeeds(t *testing.T) {
	// The seeds named *-valid decode for their type; a few known-bad ones
	// name the field in the error.
	cases := []struct {
		file, typ, wantInMsg string
	}{
		{"token-valid.json", "token", ""},
		{"token-scopes-string.json", "token", ""},
		{"token-unknown-fields.json", "token", ""},
		{"empty.json", "token", ""},
		{"exchange-valid.json", "exchange", ""},
		{"login-valid.json", "login", ""},
		{"revoke-valid.json", "revoke", ""},
		{"token-scopes-number.json", "token", "scopes"},
		{"token-min-valid-string.json", "token", "min_valid_seconds"},
		{"token-min-valid-huge.json", "token", "min_valid_seconds"},
		{"token-scopes-bad-chars.json", "token", "scopes[0]"},
		{"token-null.json", "token", "JSON object"},
		{"exchange-no-subject.json", "exchange", "subject_token"},
		{"exchange-subject-number.json", "exchange", "subject_token: want string"},
		{"login-bad-method.json", "login", "method"},
		{"empty.json", "revoke", "empty body"},
	}
	for _, tc := range cases {
		t.Run(tc.typ+"/"+tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "requests", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, rt := range requestTypes {
				if rt.name != tc.typ {
					continue
				}
				v := rt.new()
				e := decodeBody(b, v, rt.emptyOK)
				if e == nil {
					e = v.validate()
				}
				switch {
				case tc.wantInMsg == "" && e != nil:
					t.Errorf("got %v, want accepted", e)
				case tc.wantInMsg != "" && e == nil:
					t.Errorf("accepted, want an error naming %q", tc.wantInMsg)
				case e != nil && !strings.Contains(e.Message, tc.wantInMsg):
					t.Errorf("got message %q, want it to contain %q", e.Message, tc.wantInMsg)
				}
			}
		})
	}
}

func TestScopesForms(t *testing.T) {
	cases := []struct {
		in   string
		want Scopes
	}{
		{`{"scopes":["a","b"]}`, Scopes{"a", "b"}},
		{`{"scopes":" a  b "}`, Scopes{"a", "b"}},
		{`{"scopes":null}`, nil},
		{`{}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var r TokenRequest
			if e := decodeBody([]byte(tc.in), &r, false); e != nil {
				t.Fatal(e)
			}
			if strings.Join(r.Scopes, "|") != strings.Join(tc.want, "|") || (r.Scopes == nil) != (tc.want == nil) {
				t.Errorf("got %q, want %q", r.Scopes, tc.want)
			}
		})
	}
}
