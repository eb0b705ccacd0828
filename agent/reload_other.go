//go:build !unix

package agent

import "os"

// notifyReload: there is no SIGHUP here; the watcher's polling reloads.
func notifyReload() (<-chan os.Signal, func()) { return nil, func() {} }
