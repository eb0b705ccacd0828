package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goTestJSON runs the real go test -json in dir (a module of its own) and
// returns its event stream.
func goTestJSON(t *testing.T, dir string, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-json", "-count=1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off", "GOFLAGS=-mod=mod"}, env...)...)
	out, _ := cmd.Output() // a failing run exits 1; the events say why
	if len(out) == 0 {
		t.Fatalf("go test -json %v in %s printed nothing", args, dir)
	}
	return out
}

func summarize(t *testing.T, events []byte, verbose bool) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	ok, err := run(bytes.NewReader(events), &out, verbose, "")
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), ok
}

var elapsed = regexp.MustCompile(`[0-9]+\.[0-9]+s`)

func TestSummaryListsSkipsWithReasons(t *testing.T) {
	got, ok := summarize(t, goTestJSON(t, "testdata/fixture", nil, "."), false)
	if !ok {
		t.Errorf("a passing run reported failure:\n%s", got)
	}
	want := `ok  	fixture	Xs

== skipped tests (2)
SKIP fixture TestSkip: fixture_test.go:14: looked for frob; fixture_test.go:15: frob not installed: apt-get install frob
SKIP fixture TestTable/two: fixture_test.go:20: case 2 needs a display

tests: 4 passed, 0 failed, 2 skipped
`
	if got = elapsed.ReplaceAllString(got, "Xs"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// The closing line is the one CI reads: "N passed, N failed".
	if !regexp.MustCompile(`(?m)^tests: 4 passed, 0 failed, 2 skipped$`).MatchString(got) {
		t.Errorf("no closing count line in\n%s", got)
	}
}

// TestSummaryShowsFailures: a failed test's output is printed, with its
// --- FAIL line first, and what passed stays quiet as in a plain go test.
func TestSummaryShowsFailures(t *testing.T) {
	got, ok := summarize(t, goTestJSON(t, "testdata/fixture", []string{"FIXTURE_FAIL=1"}, "."), false)
	if ok {
		t.Errorf("a failing run reported success:\n%s", got)
	}
	want := `--- FAIL: TestFail/sub (Xs)
    fixture_test.go:29: sub boom
--- FAIL: TestFail (Xs)
printed by the failing test
    fixture_test.go:28: boom
FAIL
FAIL	fixture	Xs
`
	got = elapsed.ReplaceAllString(got, "Xs")
	if !strings.HasPrefix(got, want) {
		t.Errorf("got\n%s\nwant it to start with\n%s", got, want)
	}
	if strings.Contains(got, "not shown unless -v") || strings.Contains(got, "=== RUN") {
		t.Errorf("a passing test's output or a framing line was printed:\n%s", got)
	}
	if !strings.HasSuffix(got, "tests: 3 passed, 2 failed, 2 skipped\n") {
		t.Errorf("got\n%s\nwant the count line 3 passed, 2 failed, 2 skipped", got)
	}
}

func TestSummaryVerbosePrintsEverything(t *testing.T) {
	got, ok := summarize(t, goTestJSON(t, "testdata/fixture", nil, "-v", "."), true)
	if !ok {
		t.Errorf("a passing run reported failure:\n%s", got)
	}
	for _, want := range []string{"=== RUN   TestPass\n", "not shown unless -v", "--- SKIP: TestSkip", "\nPASS\n", "SKIP fixture TestSkip: "} {
		if !strings.Contains(got, want) {
			t.Errorf("-v output lacks %q:\n%s", want, got)
		}
	}
}

// TestSummaryBuildFailure: a package that does not compile fails the
// summary, and the compiler's message is printed.
func TestSummaryBuildFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "broken_test.go"), []byte("package broken\n\nfunc TestX(t *testing.T) { undefinedThing() }\n"), 0o644)
	got, ok := summarize(t, goTestJSON(t, dir, nil, "."), false)
	if ok {
		t.Errorf("a build failure reported success:\n%s", got)
	}
	if !strings.Contains(got, "undefined") || !strings.Contains(got, "FAIL\tbroken") {
		t.Errorf("the build error is not shown:\n%s", got)
	}
}

func TestSkipReason(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"=== RUN   TestX\n    x_test.go:3: no display\n--- SKIP: TestX (0.00s)\n", "x_test.go:3: no display"},
		{"=== RUN   TestX\n--- SKIP: TestX (0.00s)\n", "(no reason given)"},
		{"", "(no reason given)"},
	} {
		if got := skipReason(tc.text, "TestX"); got != tc.want {
			t.Errorf("skipReason(%q): got %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestSkipListSortedAndTrimmed: skips are listed by package and test, the
// module path cut, whatever order the parallel packages finished in.
func TestSkipListSortedAndTrimmed(t *testing.T) {
	events := `{"Action":"output","Package":"m/b","Test":"TestY","Output":"    y_test.go:1: why y\n"}
{"Action":"skip","Package":"m/b","Test":"TestY"}
{"Action":"output","Package":"m/a","Test":"TestZ","Output":"    z_test.go:1: why z\n"}
{"Action":"skip","Package":"m/a","Test":"TestZ"}
{"Action":"skip","Package":"m/a","Test":"TestX"}
`
	var out bytes.Buffer
	if _, err := run(strings.NewReader(events), &out, false, "m/"); err != nil {
		t.Fatal(err)
	}
	want := `
== skipped tests (3)
SKIP a TestX: (no reason given)
SKIP a TestZ: z_test.go:1: why z
SKIP b TestY: y_test.go:1: why y

tests: 0 passed, 0 failed, 3 skipped
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
