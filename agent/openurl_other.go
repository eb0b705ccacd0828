//go:build !unix && !windows

package agent

import (
	"fmt"
	"runtime"
)

// opener reports that this platform has no known way to open a browser.
func opener(string) (string, []string, error) {
	return "", nil, fmt.Errorf("%w: not supported on %s", ErrNoBrowser, runtime.GOOS)
}
