package untrusted

import "testing"

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"plain", "invalid_grant", 64, "invalid_grant"},
		{"control characters dropped", "bad\r\nSet-Cookie: x\x1b[31m", 64, "badSet-Cookie: x[31m"},
		{"cut on a rune boundary", "ab€cd", 4, "ab…"},
		{"exact length kept", "abcd", 4, "abcd"},
		{"empty", "", 8, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in, tt.n); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
