// Package ipc implements ncagent's local wire protocol v1: HTTP/1.1 with JSON
// bodies over a Unix stream socket (a named pipe on Windows), the server with
// its peer checks and limits, and a Go client. The socket, its path and
// the peer credentials are package internal/usersock's; Listen, Dial,
// SocketPath, ListenActivated, Peer and the socket errors are its names
// here.
//
// ipc decides no token policy: it decodes requests, checks the peer, and
// hands each request to a Backend (the agent).
//
// # Endpoints
//
//	GET  /v1/status    StatusResponse
//	POST /v1/token     TokenRequest    -> TokenResponse
//	POST /v1/exchange  ExchangeRequest -> TokenResponse
//	POST /v1/login     LoginRequest    -> newline-delimited LoginEvents
//	POST /v1/revoke    RevokeRequest   -> RevokeResponse
//	POST /v1/session   SessionRequest  -> SessionResponse, held open (session.go)
//	POST /v1/unlock    UnlockRequest   -> StoreResponse (see unlock.go)
//	POST /v1/lock      LockRequest     -> StoreResponse
//
// A RevokeRequest with "forget": true (ncagent remove) also has the agent
// delete the account's client secret from whichever store it uses, so no
// client touches a keychain itself; for an account the agent does not
// serve, it deletes the stored secrets of that name and answers
// unknown_account.
//
// Errors are an Error body with the status documented for its code.
// store_locked (503) says the agent's secret store (a locked keychain, a
// file store not unlocked, no keychain at all) cannot take a rotated
// secret now: nothing was sent to the identity provider, and the message
// says how to unlock (ncagent unlock; CLI exit code 6).
// Bodies over MaxBodyBytes are refused with too_large; the rest of such a
// body is read and dropped (up to 4 MiB or 2 s) first, so that a client
// that writes its whole request before reading gets the answer. Unknown
// fields are ignored.
//
// Server and Client are net/http and encoding/json: one HTTP stack, no
// hand-written parser on the trust boundary. An endpoint is one entry of
// the routes table (routes.go); a handler that panics is answered 500 and
// the server goes on.
//
// # Security
//
// The socket is 0600 in a 0700 directory owned by the user (Listen creates
// and checks it; usersock's package doc has the rules). The Server checks
// the peer credentials of every accepted connection before any byte is
// read: a peer of another user, or one whose credentials cannot be
// learned, is closed at once. Dial, and so the Client, checks the server's
// credentials the same way, so a socket planted by someone else is not
// trusted with a subject token. Responses carry tokens; log only their
// metadata.
//
// # Agent
//
//	ln, ok, err := ipc.ListenActivated() // systemd socket activation
//	if err == nil && !ok {
//		ln, err = ipc.Listen(path) // path from ipc.SocketPath()
//	}
//	if err != nil {
//		return err // errors.Is(err, ipc.ErrAlreadyRunning): another agent serves
//	}
//	srv := ipc.NewServer(backend, ipc.ServerOptions{Logger: logger, Socket: path})
//	defer srv.Close()
//	return srv.Run(ctx, ln) // returns after ctx is done and requests finished
//
// # Client
//
//	path, err := ipc.SocketPath()
//	c := ipc.NewClient(path)
//	tok, err := c.Token(ctx, ipc.TokenRequest{Account: "work", Scopes: ipc.Scopes{"openid"}})
//	if errors.Is(err, ipc.ErrNotRunning) { /* start the agent */ }
//	var e *ipc.Error
//	if errors.As(err, &e) && e.Code == ipc.CodeNeedsLogin { /* sign in */ }
//	req.Header.Set("Authorization", tok.Authorization) // a secret: never log it
package ipc
