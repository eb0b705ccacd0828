package testutil

import (
	"os"
	"strings"
)

// Loadavg returns the first three fields of /proc/loadavg (the 1, 5 and
// 15 minute load averages), or "unknown" where there is no such file: for
// benchmark reports, whose numbers mean little on a busy machine.
func Loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
