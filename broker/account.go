package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
)

const (
	defaultEarlyRefresh = 30 * time.Second
	defaultKeepAlive    = 10 * time.Minute
	// usedSecrets is how many superseded refresh tokens an account remembers
	// (as hashes) so that none is ever sent again.
	usedSecrets = 8
)

// TokenRequest asks for a background token.
type TokenRequest struct {
	Account  string
	Scopes   []string      // default: the account's Scopes
	Audience string        // default: the account's Audience (none when empty)
	MinValid time.Duration // the token must stay valid at least this long
}

// ExchangeRequest asks for a session token by RFC 8693 token exchange.
// SubjectToken and ActorToken are secrets.
type ExchangeRequest struct {
	Account          string
	SubjectToken     Secret
	SubjectTokenType string // default urn:ietf:params:oauth:token-type:access_token
	Audience         string // default: the account's Audience, else "nextcloud"
	Scopes           []string
	ActorToken       Secret // set for delegation
	ActorTokenType   string // default urn:ietf:params:oauth:token-type:access_token
}

// cacheEntry is one cached background token. Its fields are immutable once
// the entry is in account.tokens; tok.Scopes and key are shared with
// callers and never modified.
type cacheEntry struct {
	aud string
	key []string // sorted, de-duplicated requested scopes
	tok Token
	// early is the entry's early refresh: the account's, capped at a
	// quarter of the lifetime the IdP issued, so that a token fresh from
	// the IdP always serves however short its lifetime.
	early time.Duration
}

// newEntry returns the cache entry of tok, issued at now, for an account
// whose early refresh is early.
func newEntry(aud string, key []string, tok Token, early time.Duration, now time.Time) cacheEntry {
	if !tok.Expiry.IsZero() {
		early = min(early, tok.Expiry.Sub(now)/4)
	}
	return cacheEntry{aud: aud, key: key, tok: tok.withAnswers(), early: max(early, 0)}
}

// account is the broker's state of one configured account.
type account struct {
	name string
	// chain is the account's refresh chain lock (1-buffered channel, so
	// waiting respects a context): held while the long-lived secret is used
	// or replaced (refresh, revoke, sign-in hand-over, store retries).
	chain chan struct{}

	mu          sync.RWMutex // guards every field below
	cfg         Account
	defScopes   []string // sorted, de-duplicated cfg.Scopes
	early       time.Duration
	tokens      []cacheEntry          // background tokens; one per account in single-token mode
	exchanged   map[[32]byte]Token    // session tokens when cfg.CacheExchanged
	basic       Token                 // app-password accounts: the Basic credential once loaded
	secret      Secret                // refresh token or app password; "" when not loaded
	loaded      bool                  // secret is known (read from the Store or handed over)
	used        [usedSecrets][32]byte // hashes of superseded refresh tokens
	usedN       int
	unsaved     bool      // secret is not in the Store yet: degraded
	nextPut     time.Time // when Run retries the Store write
	putFails    int
	state       State
	singleToken bool
	loggedST    bool
	oneToken    bool          // one access token per grant by policy (grantpolicy.go)
	endpoint    string        // the token endpoint of the latest refresh
	granted     []string      // sorted scopes of the grant, when known (one-token mode)
	lifetime    time.Duration // access token lifetime of the provider's latest answer
	idpErr      error         // the IdP error that moved the account to needs-login
	lastErr     string
	lastRefresh time.Time
	refreshExp  time.Time
	nextKeep    time.Time // next keep-alive refresh; zero: not scheduled
}

func newAccount(cfg Account) *account {
	a := &account{name: cfg.Name, chain: make(chan struct{}, 1), state: StateSignedOut}
	a.setConfig(cfg)
	return a
}

// setConfig installs cfg. Called with a.mu held or before a is shared.
func (a *account) setConfig(cfg Account) {
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.ExchangeParams = maps.Clone(cfg.ExchangeParams)
	cfg.CAPEM = slices.Clone(cfg.CAPEM)
	a.cfg = cfg
	a.oneToken = oneTokenPerGrant(cfg, a.endpoint)
	a.defScopes = sortedScopes(cfg.Scopes)
	a.early = cfg.EarlyRefresh
	if a.early <= 0 {
		a.early = defaultEarlyRefresh
	}
}

// lock acquires the refresh chain, or fails when ctx ends first.
func (a *account) lock(ctx context.Context) error {
	select {
	case a.chain <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *account) unlock() { <-a.chain }

// lookup returns the cached background token for (aud, scopes) when it has
// more than minValid left, and with early more than the entry's early
// refresh too. In single-token mode the one token of the audience serves
// every scope set. Called with a.mu held (read). It does not allocate.
func (a *account) lookup(aud string, scopes []string, minValid time.Duration, early bool, now time.Time) (Token, bool) {
	for i := range a.tokens {
		e := &a.tokens[i]
		if e.aud != aud || (!a.single() && !slices.Equal(e.key, scopes)) {
			continue
		}
		need := minValid
		if early {
			need = max(need, e.early)
		}
		// need is a minimum: a token with exactly need left meets it, as a
		// token fresh from the provider meets a min_valid equal to its
		// lifetime (cannotMeet). With a strict test, each caller of a
		// burst measured from that refresh (burstBase) found the fresh
		// token short by nothing and refreshed again.
		if e.tok.Valid(now, 0) && (e.tok.Expiry.IsZero() || e.tok.Expiry.Sub(now) >= need) && (!a.single() || subset(scopes, e.tok.Scopes)) {
			return e.tok, true
		}
		return Token{}, false
	}
	return Token{}, false
}

// purge drops every cached token and returns how many there were. Called
// with a.mu held.
func (a *account) purge() int {
	n := len(a.tokens) + len(a.exchanged)
	if a.basic.AccessToken != "" {
		n++
	}
	a.tokens = nil
	a.exchanged = nil
	a.basic = Token{}
	return n
}

// setSecret replaces the in-memory secret, remembering the old one as used
// so it is never sent again. Called with a.mu held.
func (a *account) setSecret(s Secret) {
	if a.secret != "" && a.secret != s {
		a.used[a.usedN%usedSecrets] = sha256.Sum256([]byte(a.secret))
		a.usedN++
	}
	a.secret = s
	a.loaded = true
}

// wasUsed reports whether s is a superseded refresh token. Called with a.mu
// held.
func (a *account) wasUsed(s Secret) bool {
	h := sha256.Sum256([]byte(s))
	for i := 0; i < min(a.usedN, usedSecrets); i++ {
		if a.used[i] == h {
			return true
		}
	}
	return false
}

// scheduleKeepAlive sets the next keep-alive refresh after a refresh at
// now. Called with a.mu held.
func (a *account) scheduleKeepAlive(now time.Time) {
	if a.cfg.Kind != KindOIDC || a.cfg.KeepAlive < 0 {
		a.nextKeep = time.Time{}
		return
	}
	if !a.refreshExp.IsZero() && a.refreshExp.After(now) {
		// Refresh at about 75% of the refresh token's lifetime.
		a.nextKeep = now.Add(a.refreshExp.Sub(now) * 3 / 4)
		return
	}
	iv := a.cfg.KeepAlive
	if iv == 0 {
		iv = defaultKeepAlive
	}
	a.nextKeep = now.Add(iv)
}

func (a *account) status() AccountStatus {
	st := AccountStatus{
		Name:          a.name,
		Kind:          a.cfg.Kind,
		Server:        a.cfg.Server,
		Issuer:        a.cfg.Issuer,
		Username:      a.cfg.Username,
		State:         a.state,
		Degraded:      a.unsaved && a.putFails > 0, // a write in progress is not a failure
		SingleToken:   a.single(),
		Scopes:        slices.Clone(a.cfg.Scopes),
		RefreshExpiry: a.refreshExp,
		LastError:     a.lastErr,
		LastRefresh:   a.lastRefresh,
	}
	for _, e := range a.tokens {
		st.Tokens = append(st.Tokens, CachedToken{Audience: e.aud, Scopes: slices.Clone(e.tok.Scopes), Expiry: e.tok.Expiry})
	}
	for _, t := range a.exchanged {
		st.Tokens = append(st.Tokens, CachedToken{Audience: t.Audience, Scopes: slices.Clone(t.Scopes), Expiry: t.Expiry})
	}
	if a.basic.AccessToken != "" {
		st.Tokens = append(st.Tokens, CachedToken{Audience: a.basic.Audience})
	}
	return st
}

// SetAccount adds an account or replaces its configuration. A replacement
// with the same kind, issuer, client and token endpoint keeps the account's
// chain state (secret, cache, state); any other replacement starts afresh.
// It does not touch the Store.
func (b *Broker) SetAccount(cfg Account) error {
	if err := b.validate(cfg); err != nil {
		return fmt.Errorf("set account %q: %w", cfg.Name, err)
	}
	b.mu.Lock()
	old := b.accounts[cfg.Name]
	if old != nil {
		old.mu.Lock()
		same := old.cfg.Kind == cfg.Kind && old.cfg.Issuer == cfg.Issuer && old.cfg.ClientID == cfg.ClientID &&
			old.cfg.Endpoints.Token == cfg.Endpoints.Token && old.cfg.Server == cfg.Server && old.cfg.Username == cfg.Username
		if same {
			old.setConfig(cfg)
			old.mu.Unlock()
			b.mu.Unlock()
			b.wake()
			return nil
		}
		old.purge()
		old.mu.Unlock()
	}
	b.accounts[cfg.Name] = newAccount(cfg)
	b.mu.Unlock()
	b.wake()
	return nil
}

func (b *Broker) validate(a Account) error {
	if a.Name == "" || strings.ContainsFunc(a.Name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return errors.New("account name must be non-empty without spaces")
	}
	if len(a.CAPEM) > 0 {
		if _, err := b.clientFor(a.CAPEM); err != nil {
			return err
		}
	}
	switch a.Kind {
	case KindAppPassword:
		if a.Server == "" || a.Username == "" {
			return errors.New("app-password account needs a server and a username")
		}
		return CheckEndpointURL("server", a.Server)
	case KindOIDC:
	default:
		return fmt.Errorf("unknown account kind %q (want %q or %q)", a.Kind, KindOIDC, KindAppPassword)
	}
	if a.Issuer == "" && a.Endpoints.Token == "" {
		return errors.New("oidc account needs an issuer or a token endpoint")
	}
	if a.ClientID == "" {
		return errors.New("oidc account needs a client id")
	}
	if err := ValidateExchangeParams(a.ExchangeParams); err != nil {
		return err
	}
	if err := ValidTokensPerGrant(a.TokensPerGrant); err != nil {
		return err
	}
	for _, u := range []struct{ what, url string }{
		{"issuer", a.Issuer}, {"token endpoint", a.Endpoints.Token}, {"revocation endpoint", a.Endpoints.Revocation},
		{"jwks uri", a.Endpoints.JWKS}, {"server", a.Server},
	} {
		if u.url != "" {
			if err := CheckEndpointURL(u.what, u.url); err != nil {
				return err
			}
		}
	}
	switch clientAuthOf(a) {
	case ClientAuthNone:
	case ClientAuthPost, ClientAuthBasic:
		if a.ClientSecret == "" {
			return fmt.Errorf("client authentication %s needs a client secret", clientAuthOf(a))
		}
	default:
		return fmt.Errorf("unknown client authentication %q", a.ClientAuth)
	}
	return nil
}

// RemoveAccount forgets an account: its cache and in-memory state. It does
// not touch the Store.
func (b *Broker) RemoveAccount(name string) {
	b.mu.Lock()
	a := b.accounts[name]
	delete(b.accounts, name)
	b.mu.Unlock()
	if a != nil {
		a.mu.Lock()
		a.purge()
		a.secret = ""
		a.loaded = false
		a.mu.Unlock()
	}
}

func (b *Broker) get(name string) *account {
	b.mu.RLock()
	a := b.accounts[name]
	b.mu.RUnlock()
	return a
}

func (b *Broker) snapshot() []*account {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*account, 0, len(b.accounts))
	for _, a := range b.accounts {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *account) int { return strings.Compare(x.name, y.name) })
	return out
}

// Status returns a snapshot of every account, sorted by name. It holds no
// token value.
func (b *Broker) Status() []AccountStatus {
	accts := b.snapshot()
	out := make([]AccountStatus, 0, len(accts))
	for _, a := range accts {
		a.mu.RLock()
		out = append(out, a.status())
		a.mu.RUnlock()
	}
	return out
}

// AccountStatus returns a snapshot of one account.
func (b *Broker) AccountStatus(name string) (AccountStatus, error) {
	a := b.get(name)
	if a == nil {
		return AccountStatus{}, unknownAccount(name)
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.status(), nil
}

func unknownAccount(name string) error {
	return &AccountError{Account: name, Err: ErrUnknownAccount}
}

// emit sends ev to Options.OnEvent. Call without locks held.
func (b *Broker) emit(ev Event) {
	if b.onEvent != nil {
		b.onEvent(ev)
	}
}

// setState moves a to st, recording cause, and reports whether the state
// changed (then the caller emits an Event once it released a.mu). Called
// with a.mu held.
func (a *account) setState(st State, cause error) bool {
	if cause != nil {
		a.lastErr = cause.Error()
	}
	if a.state == st {
		return false
	}
	a.state = st
	return true
}

// SignedIn hands over the secret of a completed sign-in: a new refresh
// token (oidc) or app password. The secret is written to the Store first;
// if that fails the error is returned and the account keeps its old state.
// Then the cache is purged, initial (the sign-in's access token, may be
// nil) is cached, the account is signed in and an Event is emitted.
func (b *Broker) SignedIn(ctx context.Context, name string, secret Secret, initial *Token, refreshExpiry time.Time) error {
	a := b.get(name)
	if a == nil {
		return unknownAccount(name)
	}
	if secret == "" {
		return &AccountError{Account: name, Err: errors.New("sign-in: empty secret")}
	}
	if err := a.lock(ctx); err != nil {
		return &AccountError{Account: name, Err: fmt.Errorf("sign-in: waiting for the refresh chain: %w", err)}
	}
	defer a.unlock()
	if err := b.store.Put(name, secret); err != nil {
		return &AccountError{Account: name, Err: fmt.Errorf("sign-in: store secret: %w", err)}
	}
	now := b.now()
	a.mu.Lock()
	a.purge()
	a.setSecret(secret)
	a.unsaved, a.putFails, a.nextPut = false, 0, time.Time{}
	a.idpErr = nil
	a.lastErr = ""
	a.singleToken, a.loggedST = false, false
	a.refreshExp = refreshExpiry
	a.lastRefresh = now
	a.learnEndpoint(b.cachedTokenEndpoint(a.cfg))
	if a.cfg.Kind == KindAppPassword {
		a.basic = a.basicToken(secret)
	} else if initial != nil && initial.AccessToken != "" {
		t := *initial
		t.Account = name
		if t.TokenType == "" {
			t.TokenType = "Bearer"
		}
		if t.Server == "" {
			t.Server = a.cfg.Server
		}
		if t.Username == "" {
			t.Username = a.cfg.Username
		}
		// The sign-in asked for the account's scopes plus openid, profile,
		// email and offline_access; the first default request asks for
		// the account's scopes. Key the token under those so that the
		// sign-in's token serves it: no refresh right after the code
		// exchange (on the Nextcloud oidc app that refresh kills the
		// sign-in's token).
		t.Scopes = sortedScopes(t.Scopes)
		key := a.defScopes
		if !subset(key, t.Scopes) {
			key = slices.DeleteFunc(slices.Clone(t.Scopes), func(s string) bool { return s == "offline_access" })
		}
		a.granted = t.Scopes
		if t.Audience == "" {
			t.Audience = a.cfg.Audience
		}
		a.tokens = []cacheEntry{newEntry(t.Audience, key, t, a.early, now)}
	}
	a.scheduleKeepAlive(now)
	changed := a.setState(StateSignedIn, nil)
	a.mu.Unlock()
	b.saveChainTimes(a)
	b.log.Info("account signed in", "account", name)
	if changed {
		b.emit(Event{Account: name, State: StateSignedIn})
	}
	b.wake()
	return nil
}

// basicToken builds an app-password account's Basic credential. Called
// with a.mu held.
func (a *account) basicToken(password Secret) Token {
	v := base64.StdEncoding.EncodeToString([]byte(a.cfg.Username + ":" + password.Reveal()))
	return Token{
		Account:     a.name,
		TokenType:   "Basic",
		AccessToken: Secret(v),
		Username:    a.cfg.Username,
		Server:      a.cfg.Server,
	}.withAnswers()
}

// MarkNeedsLogin moves an account to needs-login: the agent saw its
// credential refused elsewhere (a 401 from Nextcloud for an app password).
// Cached tokens and the in-memory secret are dropped; the Store is left
// alone (a new sign-in replaces it).
func (b *Broker) MarkNeedsLogin(name string, cause error) {
	a := b.get(name)
	if a == nil {
		return
	}
	if cause == nil {
		cause = errors.New("credential refused")
	}
	a.mu.Lock()
	changed := a.toNeedsLogin(cause)
	a.mu.Unlock()
	if changed {
		b.log.Info("account needs sign-in", "account", name, "cause", cause.Error())
		b.emit(Event{Account: name, State: StateNeedsLogin, Err: cause})
	}
}

// toNeedsLogin moves a to needs-login, purging its tokens and forgetting
// its secret. Called with a.mu held.
func (a *account) toNeedsLogin(cause error) bool {
	a.purge()
	if a.secret != "" {
		a.setSecret("")
	}
	a.secret = ""
	a.loaded = false
	a.unsaved = false
	a.nextKeep = time.Time{}
	a.idpErr = cause
	return a.setState(StateNeedsLogin, cause)
}
