package proxy

import "errors"

// errPeerUnknown is returned by the peer check when the owner of the
// peer's socket cannot be found; the connection is refused.
var errPeerUnknown = errors.New("owner of the peer socket unknown")
