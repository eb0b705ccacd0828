// Package broker owns the token lifecycle of ncagent accounts: OIDC
// discovery, the refresh grant, RFC 8693 token exchange, the token cache, the
// single refresh chain per account, and revocation.
//
// Two types split the work: a Broker owns the accounts (chain, cache,
// state, keep-alive); a Provider is one account's identity provider as the
// protocol sees it (metadata, client authentication, HTTP client) and makes
// the protocol calls of the sign-in flows: code exchange, device
// authorization and token requests, ID token and userinfo checks. The
// Broker sends its own token requests through a Provider too, and
// Broker.Provider hands the sign-in one built from the Broker's cached
// discovery and shared JWKS cache.
//
// It knows nothing of sockets, keychains or the tray: the long-lived secret
// of each account is read and written through a Store, and state changes are
// reported through Options.OnEvent.
//
// The refresh chain rules (see ARCHITECTURE.md):
//   - one chain per account, owned by this Broker; refreshes of one account
//     are serialized and identical concurrent requests share one IdP call;
//   - a rotated refresh token is written to the Store before the new access
//     token is returned; a failed write keeps it in memory, marks the account
//     degraded and retries; the old token is never used again;
//   - invalid_grant re-reads the Store once, then moves the account to
//     needs-login and purges its cached tokens;
//   - a secret is never rotated when the Store cannot take the new one:
//     before a refresh grant a WritableStore is asked, and when it says no
//     nothing is sent (ErrStoreLocked; a cached token that meets the
//     request is still served).
//
// Two choices beyond those rules:
//   - a refresh call already sent is not cancelled when its caller's
//     context ends or the caller has waited 30 s: the caller gets an error
//     (or a still-valid cached token), and the call finishes in the
//     background (bounded by 2 minutes) holding the chain, so a refresh
//     token the IdP rotated is never lost; Stop and Shutdown end the work
//     gracefully, waiting for such calls (see shutdown.go);
//   - an account whose Store has no secret on first use is signed-out (not
//     needs-login); its requests fail with an error wrapping both
//     ErrNeedsLogin and ErrSignedOut.
package broker

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ncagent/ncagent/internal/buildinfo"
)

// Options configure a Broker.
type Options struct {
	// Store keeps each account's long-lived secret. Required.
	Store Store
	// Logger receives debug and info lines; never a secret. Default: discard.
	Logger *slog.Logger
	// UserAgent of IdP requests; default buildinfo.UserAgent().
	UserAgent string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnEvent is told of account state changes. It is called without locks
	// held and must not block.
	OnEvent func(Event)
	// HTTPClient, when set, is used for every IdP call instead of the
	// per-CA-bundle clients made by NewHTTPClient.
	HTTPClient *http.Client
	// ChainTimes, when set, keeps when each stored refresh token was last
	// refreshed, so that a restart does not refresh every chain at once.
	ChainTimes ChainTimesStore
}

// Broker serves tokens of the configured accounts, owning each account's
// single refresh chain. All methods are safe for concurrent use. Tokens it
// returns must not be logged.
type Broker struct {
	store      Store
	log        *slog.Logger
	userAgent  string
	now        func() time.Time
	onEvent    func(Event)
	httpClient *http.Client // Options.HTTPClient; nil: clientFor builds them

	// Tunables; tests shrink them. Set before first use, read-only after.
	maxAttempts      int           // IdP attempts per refresh (1 + retries)
	backoffBase      time.Duration // first backoff ceiling (full jitter)
	backoffMax       time.Duration // backoff ceiling
	discoveryTTL     time.Duration
	discoveryFailTTL time.Duration
	sleep            func(ctx context.Context, d time.Duration) error
	jitter           func(n int64) int64 // uniform in [0, n)

	mu       sync.RWMutex        // guards accounts (the map, not the accounts)
	accounts map[string]*account // by name

	clientsMu sync.Mutex                // guards clients
	clients   map[[32]byte]*http.Client // by SHA-256 of the CA bundle

	discMu sync.Mutex            // guards disc
	disc   map[string]*discEntry // by issuer

	jwksMu sync.Mutex            // guards jwks
	jwks   map[string]*jwksCache // by JWKS URL

	kick chan struct{} // 1-buffered: wakes Run to recompute its schedule

	stop  *stopState      // graceful stop and chain timing (shutdown.go)
	times ChainTimesStore // Options.ChainTimes; may be nil
}

// New returns a Broker. Add accounts with SetAccount; start the keep-alive
// scheduler with Run.
func New(opts Options) *Broker {
	b := &Broker{
		store:            opts.Store,
		log:              opts.Logger,
		userAgent:        opts.UserAgent,
		now:              opts.Now,
		onEvent:          opts.OnEvent,
		httpClient:       opts.HTTPClient,
		maxAttempts:      4,
		backoffBase:      250 * time.Millisecond,
		backoffMax:       8 * time.Second,
		discoveryTTL:     discoveryTTL,
		discoveryFailTTL: discoveryFailTTL,
		sleep:            sleepCtx,
		jitter:           rand.Int64N,
		accounts:         map[string]*account{},
		clients:          map[[32]byte]*http.Client{},
		disc:             map[string]*discEntry{},
		jwks:             map[string]*jwksCache{},
		kick:             make(chan struct{}, 1),
		stop:             newStopState(),
		times:            opts.ChainTimes,
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b.userAgent == "" {
		b.userAgent = buildinfo.UserAgent()
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// sleepCtx waits d, or until ctx is done and then returns ctx.Err(): the
// wait between the broker's retries.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
