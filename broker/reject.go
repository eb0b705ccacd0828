package broker

// Reject drops the cached background token of the account whose access
// token is accessToken, because a resource server refused it (HTTP 401:
// revoked, or superseded by a refresh on an IdP that keeps one access token
// per grant). The next Token call for its scopes and audience then
// refreshes through the chain instead of serving it again. It reports
// whether a token was dropped; an unknown account or a token no longer
// cached is not an error. App-password credentials are never dropped: a
// 401 on an app password is the sign-in's business, not the cache's.
//
// Reject is safe for concurrent use. accessToken must not be logged.
func (b *Broker) Reject(account string, accessToken Secret) bool {
	a := b.get(account)
	if a == nil || accessToken == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.tokens {
		if a.tokens[i].tok.AccessToken == accessToken {
			// Entries are immutable and shared with callers: build a new
			// slice rather than shifting the old one in place.
			kept := make([]cacheEntry, 0, len(a.tokens)-1)
			kept = append(kept, a.tokens[:i]...)
			a.tokens = append(kept, a.tokens[i+1:]...)
			return true
		}
	}
	return false
}
