package agent

import (
	"bytes"
	"os"
	"strconv"

	"github.com/ncagent/ncagent/ipc"
)

// peerInSession reports whether peer is this process or a process whose
// environment sets DISPLAY or WAYLAND_DISPLAY. An environment that cannot
// be read (the peer is gone, or not dumpable) counts as no session.
func peerInSession(peer ipc.Peer) bool {
	if peer.PID <= 0 {
		return false
	}
	if peer.PID == os.Getpid() {
		return true
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(peer.PID) + "/environ")
	if err != nil {
		return false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		for _, k := range []string{"DISPLAY=", "WAYLAND_DISPLAY="} {
			if bytes.HasPrefix(kv, []byte(k)) && len(kv) > len(k) {
				return true
			}
		}
	}
	return false
}
