//go:build unix

package agent

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the daemon convention for "reload your
// config".
func notifyReload() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}
