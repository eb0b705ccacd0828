//go:build unix && !darwin

package agent

import (
	"fmt"
	"os"
)

// opener returns xdg-open, which needs a graphical session: without one it
// would fall back to a text browser in whatever terminal the agent has.
func opener(rawURL string) (string, []string, error) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return "", nil, fmt.Errorf("%w: no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set)", ErrNoBrowser)
	}
	return "xdg-open", []string{rawURL}, nil
}
