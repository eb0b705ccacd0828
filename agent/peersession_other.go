//go:build !linux

package agent

import (
	"os"

	"github.com/ncagent/ncagent/ipc"
)

// peerInSession: outside Linux no other process's environment can be read
// cheaply, so only requests from this process (the tray, the setup page)
// open the browser; other clients open it themselves.
func peerInSession(peer ipc.Peer) bool { return peer.PID == os.Getpid() }
