package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestReportOfRealGoTest runs go test -json on a throwaway module with a
// passing, a failing and a skipping test, and checks what the report
// shows: the failure's output, not the pass's, and the skip's reason.
func TestReportOfRealGoTest(t *testing.T) {
	dir := t.TempDir()
	write(t, dir+"/go.mod", "module example.com/m\n\ngo 1.21\n")
	write(t, dir+"/m_test.go", `package m

import "testing"

func TestPass(t *testing.T) { t.Log("quiet when it passes") }
func TestFail(t *testing.T) { t.Error("loud when it fails") }
func TestSkip(t *testing.T) { t.Skip("needs a Secret Service: run scripts/test") }
func TestSub(t *testing.T) {
	t.Run("inner", func(t *testing.T) { t.Skipf("no %s here", "dpkg") })
}
`)
	cmd := exec.Command("go", "test", "-json", ".")
	cmd.Dir = dir
	out, _ := cmd.Output() // the failing test makes go test exit 1
	var w bytes.Buffer
	skips, err := report(bytes.NewReader(out), &w, false)
	if err != nil {
		t.Fatal(err)
	}
	printSkips(&w, skips)
	got := w.String()
	for _, want := range []string{"loud when it fails", "--- FAIL: TestFail", "FAIL\texample.com/m",
		"== skipped tests (2)", "example.com/m TestSkip: needs a Secret Service: run scripts/test", "example.com/m TestSub/inner: no dpkg here"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet when it passes") {
		t.Errorf("report shows a passing test's output:\n%s", got)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
