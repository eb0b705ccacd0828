// Command testreport prints the output of "go test -json" the way go test
// prints it without -json (or with -v, every line), then a summary of
// every skipped test with its reason. scripts/test pipes go test into it.
//
// Usage: go test -json ./... | go run ./scripts/testreport [-v]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type skip struct{ pkg, test, reason string }

func main() {
	verbose := flag.Bool("v", false, "print every line, as go test -v")
	flag.Parse()
	skips, err := report(os.Stdin, os.Stdout, *verbose)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(1)
	}
	printSkips(os.Stdout, skips)
}

// report copies the events of r to w and returns the skipped tests.
func report(r io.Reader, w io.Writer, verbose bool) ([]skip, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	held := map[string][]string{} // output of a running test, by package and test
	var skips []skip
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			// Not an event (go vet or build output): pass it on.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		key := ev.Package + " " + ev.Test
		switch {
		case ev.Action == "output" && ev.Test == "":
			if verbose || ev.Output != "PASS\n" {
				io.WriteString(w, ev.Output)
			}
		case ev.Action == "output":
			if verbose {
				io.WriteString(w, ev.Output)
			}
			held[key] = append(held[key], ev.Output)
		case ev.Action == "fail" && ev.Test != "":
			if !verbose {
				io.WriteString(w, strings.Join(held[key], ""))
			}
			delete(held, key)
		case ev.Action == "skip" && ev.Test != "":
			skips = append(skips, skip{ev.Package, ev.Test, skipReason(held[key])})
			delete(held, key)
		case ev.Action == "pass":
			delete(held, key)
		}
	}
	return skips, sc.Err()
}

// skipReason is what the test logged before it skipped: the t.Skip
// message, after its "file.go:N: " prefix.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		if i := strings.Index(t, ".go:"); i > 0 {
			if j := strings.Index(t[i:], ": "); j > 0 {
				t = t[i+j+2:]
			}
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func printSkips(w io.Writer, skips []skip) {
	if len(skips) == 0 {
		fmt.Fprintln(w, "== skipped tests: none")
		return
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	fmt.Fprintf(w, "== skipped tests (%d)\n", len(skips))
	for _, s := range skips {
		fmt.Fprintf(w, "%s %s: %s\n", strings.TrimPrefix(s.pkg, "github.com/ncagent/ncagent/"), s.test, s.reason)
	}
}
