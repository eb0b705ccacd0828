// Command testsummary reads the events of "go test -json" on stdin and
// prints what a plain "go test" prints (with -v: everything the tests
// print), then every skipped test with the reason it gave, and a closing
// count line "tests: N passed, N failed, N skipped". scripts/test pipes the
// suite through it so that a skip is never silent.
//
// It exits 1 when a test or a build failed, 0 otherwise; the caller still
// checks go test's own exit status (set -o pipefail).
//
// The events are the ones go doc cmd/test2json documents, decoded with
// encoding/json. gotestsum prints a similar summary, but would bring a
// dozen modules into go.mod for this one listing.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of go test -json (go doc cmd/test2json; the build
// events carry ImportPath instead of Package).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// skip is one skipped test and what it said when it skipped.
type skip struct {
	pkg, test, reason string
}

type key struct{ pkg, test string }

// summary turns a stream of events into go test's own output plus the
// closing summary. Not safe for concurrent use.
type summary struct {
	out     io.Writer
	verbose bool   // print every test's output as it comes, as go test -v
	trim    string // prefix cut from package paths in the skip list

	output map[key]*strings.Builder // each running test's output so far
	skips  []skip

	passed, failed, skipped int
	buildFailed             bool
}

func newSummary(out io.Writer, verbose bool, trim string) *summary {
	return &summary{out: out, verbose: verbose, trim: trim, output: map[key]*strings.Builder{}}
}

func (s *summary) event(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "build-fail":
		s.buildFailed = true
	case "output":
		if e.Test == "" {
			// The package's own lines: "ok  pkg 1.2s", "FAIL pkg",
			// "?  pkg [no test files]", a TestMain's prints. A plain
			// go test does not print the bare PASS the test binary
			// says under -test.v.
			if s.verbose || e.Output != "PASS\n" {
				fmt.Fprint(s.out, e.Output)
			}
			return
		}
		if s.verbose {
			fmt.Fprint(s.out, e.Output)
		}
		b := s.output[k]
		if b == nil {
			b = &strings.Builder{}
			s.output[k] = b
		}
		b.WriteString(e.Output)
	case "pass":
		if e.Test != "" {
			s.passed++
			delete(s.output, k)
		}
	case "skip":
		if e.Test != "" {
			s.skipped++
			s.skips = append(s.skips, skip{e.Package, e.Test, skipReason(s.text(k), e.Test)})
			delete(s.output, k)
		}
	case "fail":
		if e.Test != "" {
			s.failed++
			s.flush(k)
			return
		}
		// The package failed (a panic, a timeout): print what its
		// still-running tests said, which is where the cause is.
		for ok := range s.output {
			if ok.pkg == e.Package {
				s.flush(ok)
			}
		}
	}
}

func (s *summary) text(k key) string {
	if b := s.output[k]; b != nil {
		return b.String()
	}
	return ""
}

// flush prints a failed test's output (already printed under -v) without
// the === framing lines a plain go test does not show, its "--- FAIL"
// line first so that what follows reads as that test's. A subtest ends
// before its parent, so its block comes first.
func (s *summary) flush(k key) {
	text := s.text(k)
	delete(s.output, k)
	if s.verbose {
		return
	}
	var head, body []string
	for _, line := range strings.SplitAfter(text, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "=== "):
		case strings.HasPrefix(strings.TrimSpace(line), "--- FAIL: "+k.test+" "):
			head = append(head, strings.TrimLeft(line, " "))
		default:
			body = append(body, line)
		}
	}
	fmt.Fprint(s.out, strings.Join(append(head, body...), ""))
}

// skipReason returns what a skipped test printed (t.Skip's message and
// any t.Log before it) as one line, without the framing lines.
func skipReason(text, test string) string {
	var parts []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP: "+test+" ") {
			continue
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, "; ")
}

// finish prints the skipped tests and the count line and reports whether
// everything passed.
func (s *summary) finish() bool {
	if len(s.skips) > 0 {
		slices.SortStableFunc(s.skips, func(a, b skip) int {
			return cmp.Or(cmp.Compare(a.pkg, b.pkg), cmp.Compare(a.test, b.test))
		})
		fmt.Fprintf(s.out, "\n== skipped tests (%d)\n", len(s.skips))
		for _, sk := range s.skips {
			fmt.Fprintf(s.out, "SKIP %s %s: %s\n", strings.TrimPrefix(sk.pkg, s.trim), sk.test, sk.reason)
		}
	}
	fmt.Fprintf(s.out, "\ntests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	return s.failed == 0 && !s.buildFailed
}

// run reads events from in until EOF. Lines that are not JSON events (a
// go command message that slipped into stdout) are printed as they are.
func run(in io.Reader, out io.Writer, verbose bool, trim string) (bool, error) {
	s := newSummary(out, verbose, trim)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text())
			continue
		}
		s.event(e)
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("testsummary: read go test -json: %w", err)
	}
	return s.finish(), nil
}

func main() {
	verbose := flag.Bool("v", false, "print every test's output, as go test -v")
	trim := flag.String("trim", "", "cut this prefix (the module path and a slash) from package paths in the skip list")
	flag.Parse()
	ok, err := run(os.Stdin, os.Stdout, *verbose, *trim)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
