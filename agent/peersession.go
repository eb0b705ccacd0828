package agent

import "github.com/ncagent/ncagent/ipc"

// browserAllowed reports whether a login request from peer may have the
// agent open the browser (open_browser): only a client in the user's
// graphical session asks for one, the tray and the setup page that run
// inside the agent, or a program whose environment names a display. A
// background job, a cron script or an SSH session of the same user never
// gets a browser opened on the desktop (architecture: no browser from a
// background request); it gets the URL to show instead.
func (a *Agent) browserAllowed(peer ipc.Peer, account string) bool {
	if peerInSession(peer) {
		return true
	}
	a.log.Info("open_browser ignored: the client is not in a graphical session", "account", account, "peer_pid", peer.PID)
	return false
}
