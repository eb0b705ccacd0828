package testutil

import (
	"os"
	"strings"
	"testing"
)

func TestLoadavg(t *testing.T) {
	got := Loadavg()
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		if got != "unknown" {
			t.Errorf("without /proc/loadavg: got %q, want unknown", got)
		}
		return
	}
	if f := strings.Fields(got); len(f) != 3 {
		t.Errorf("got %q, want three load averages", got)
	}
}
