package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ChainTimes are the non-secret facts about an account's stored refresh
// token that a restarted agent needs to keep the chain alive on schedule
// rather than refreshing at every start.
type ChainTimes struct {
	// ID names the refresh token they belong to (see ChainID); times of an
	// older token are ignored.
	ID string `json:"id"`
	// Refreshed is when the refresh token was last used or issued.
	Refreshed time.Time `json:"refreshed"`
	// Expiry is when the refresh token expires, when the IdP said
	// (refresh_expires_in); zero otherwise.
	Expiry time.Time `json:"expiry,omitzero"`
}

// ChainTimesStore keeps ChainTimes per account. Both methods must be quick
// and safe for concurrent use; a failed save only costs an early
// keep-alive refresh at the next start.
type ChainTimesStore interface {
	LoadChainTimes(account string) (ChainTimes, bool)
	SaveChainTimes(account string, t ChainTimes)
}

// ChainID is a short, one-way name of a refresh token: 64 bits of a
// domain-separated SHA-256, enough to tell two tokens apart, useless to
// recover or confirm one.
func ChainID(s Secret) string {
	h := sha256.Sum256([]byte("ncagent chain id\x00" + s.Reveal()))
	return hex.EncodeToString(h[:8])
}

// saveChainTimes records the chain times of a's stored secret. Call without
// a.mu held.
func (b *Broker) saveChainTimes(a *account) {
	if b.times == nil {
		return
	}
	a.mu.RLock()
	s, unsaved, kind := a.secret, a.unsaved, a.cfg.Kind
	t := ChainTimes{Refreshed: a.lastRefresh, Expiry: a.refreshExp}
	a.mu.RUnlock()
	if s == "" || unsaved || kind != KindOIDC || t.Refreshed.IsZero() {
		return
	}
	t.ID = ChainID(s)
	b.times.SaveChainTimes(a.name, t)
}

// restoreKeepAlive schedules the keep-alive of a secret just read from the
// Store: from the saved chain times when they belong to it, otherwise at
// once (when the secret was issued is unknown). Called with a.mu held.
func (b *Broker) restoreKeepAlive(a *account, s Secret, now time.Time) {
	if a.cfg.Kind != KindOIDC || a.cfg.KeepAlive < 0 || !a.nextKeep.IsZero() {
		return
	}
	if b.times != nil {
		if t, ok := b.times.LoadChainTimes(a.name); ok && t.ID == ChainID(s) && !t.Refreshed.IsZero() && !t.Refreshed.After(now) {
			a.lastRefresh, a.refreshExp = t.Refreshed, t.Expiry
			a.scheduleKeepAlive(t.Refreshed)
			return
		}
	}
	a.nextKeep = now
}
