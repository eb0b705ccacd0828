package packaging

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestServiceSkipsMissingBinary: the service unit and the socket unit that
// starts it carry ConditionFileIsExecutable= on the binary, specifiers
// escaped, so that removing the package (or cleaning a build cache) leaves
// units that are skipped, not ones that fail over and over.
func TestServiceSkipsMissingBinary(t *testing.T) {
	for _, name := range []string{ServiceTemplate, SocketTemplate} {
		b, err := Render(name, Data{Executable: "/opt/100%/ncagent"})
		if err != nil {
			t.Fatal(err)
		}
		if want := "\nConditionFileIsExecutable=/opt/100%%/ncagent\n"; !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", name, want, b)
		}
	}
}

func TestStatusWarnsOfBuildCacheBinary(t *testing.T) {
	for _, tc := range []struct {
		exe  string
		want bool
	}{
		{"/tmp/go-build3069217839/b001/exe/ncagent", true},
		{"/home/u/.cache/go-build/ab/cdef-d/ncagent", true},
		{"/usr/bin/ncagent", false},
		{"/home/u/go/bin/ncagent", false},
	} {
		if got := InBuildCache(tc.exe); got != tc.want {
			t.Errorf("InBuildCache(%q): got %v, want %v", tc.exe, got, tc.want)
		}
	}
	env := newTestEnv(t, "linux", nil)
	env.Runner = withManager()
	env.Executable = "/tmp/go-build123/b001/exe/ncagent"
	st, err := Status(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "Go build cache") || !strings.Contains(st.Warnings[0], "go install") {
		t.Errorf("warnings: got %q, want one naming the build cache and go install", st.Warnings)
	}
	env.Executable = testExe
	if st, _ := Status(context.Background(), env); len(st.Warnings) != 0 {
		t.Errorf("warnings for %s: got %q, want none", testExe, st.Warnings)
	}
}
