// Package proxy is the loopback proxy behind `ncagent exec`: it lets a
// program that only knows basic auth against a server URL (an MCP server
// reading NEXTCLOUD_HOST, NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD) use
// an account without ever holding the account's long-lived secret.
//
// # Contract
//
// The agent opens a Session for {account, scopes, audience} with Open and
// hands the child three things: the proxy's base URL (keeping the account
// server's path prefix, so WebDAV hrefs stay valid), the real login name,
// and the session's credential, 256 random bits from crypto/rand. A
// request to the proxy carrying that credential (as the Basic password,
// or as a Bearer token) is forwarded to the account's server with the
// credential removed and the account's real Authorization added: a fresh
// Bearer from the broker for the session's scopes and audience (refreshed
// through the account's one chain before it expires), or the app
// password. Forwarding streams (net/http/httputil.ReverseProxy, no body
// buffering) and uses the account's TLS settings. Host is set to the
// upstream; the Destination request header and the Location and
// Content-Location response headers are rewritten between the proxy's URL
// and the upstream's, and so are the resource URLs of a WebDAV If header;
// hop-by-hop headers are dropped (ReverseProxy does it, RFC 9110 section
// 7.6.1, https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1). When the
// upstream answers 401 to a Bearer, that token is rejected and the request
// is sent once more with a new one if it can be replayed (no body, or a
// body of at most MaxReplayBody that was kept for that purpose); otherwise
// the 401 is passed on.
//
// Session.Close forgets the credential at once: from then on it gets 401.
//
// # Security rules
//
//   - The proxy listens on loopback only (Listen) and refuses a request
//     whose Host is not its own address, so a web page cannot reach it
//     through DNS rebinding.
//   - On Linux a TCP peer is accepted only if its socket belongs to the
//     agent's uid (the owner of the peer's socket in /proc/net/tcp or
//     tcp6); another user is refused even with a valid credential. A peer
//     whose owner cannot be found is refused too.
//   - Credentials are compared in constant time; a session is found by the
//     SHA-256 of its credential, so the lookup leaks nothing usable.
//   - No credential — the session's, an access token, an app password — is
//     ever logged, put in an error or sent upstream: the client's
//     Authorization is always replaced, cookies are not passed in either
//     direction (an upstream session cookie would outlive the session).
//   - Each request is logged with the session id, method, path and status.
package proxy
