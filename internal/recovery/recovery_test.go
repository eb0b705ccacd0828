package recovery

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestLogNeverPrintsThePanicValue(t *testing.T) {
	const secret = "refresh-token-Zk3c9"
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"string", "failed with " + secret, "a value of type string"},
		{"error", errors.New("bad token " + secret), "a value of type *errors.errorString"},
		{"runtime error", func() (v any) {
			defer func() { v = recover() }()
			var s []string
			_ = s[3]
			return nil
		}(), "index out of range [3] with length 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			Log(slog.New(slog.NewTextHandler(&buf, nil)), "test", tc.v)
			out := buf.String()
			if strings.Contains(out, secret) {
				t.Errorf("the log holds the panic value's secret:\n%s", out)
			}
			if !strings.Contains(out, tc.want) || !strings.Contains(out, "recovery_test.go") {
				t.Errorf("log: got %q, want %q and the stack", out, tc.want)
			}
		})
	}
}
