// Package broker owns the token lifecycle of ncagent accounts: OIDC
// discovery, the refresh grant, RFC 8693 token exchange, the token cache, the
// single refresh chain per account, and revocation.
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
//     needs-login and purges its cached tokens.
package broker

// API (implemented in this package):
//
//	type Options struct {
//		Store       Store
//		Logger      *slog.Logger     // default: discard
//		UserAgent   string           // default "ncagent/" + Version
//		Now         func() time.Time // default time.Now
//		OnEvent     func(Event)      // called without locks held; must not block
//	}
//	func New(opts Options) *Broker
//	func (b *Broker) SetAccount(a Account) error      // add or replace (keeps chain state when issuer/client unchanged)
//	func (b *Broker) RemoveAccount(name string)       // purge cache, forget state (does not touch the Store)
//	func (b *Broker) Status() []AccountStatus         // sorted by name
//	func (b *Broker) AccountStatus(name string) (AccountStatus, error)
//	func (b *Broker) Token(ctx context.Context, req TokenRequest) (Token, error)
//	func (b *Broker) Exchange(ctx context.Context, req ExchangeRequest) (Token, error)
//	func (b *Broker) Revoke(ctx context.Context, account string) (RevokeResult, error)
//	func (b *Broker) SignedIn(ctx context.Context, account string, secret Secret, initial *Token, refreshExpiry time.Time) error
//	func (b *Broker) MarkNeedsLogin(account string, cause error)
//	func (b *Broker) Run(ctx context.Context) error   // keep-alive scheduler; returns nil on ctx done
//	func (b *Broker) Discover(ctx context.Context, a Account) (Metadata, error)
//	func NewHTTPClient(o HTTPOptions) (*http.Client, error)

// Version is the ncagent version, set by the linker
// (-ldflags "-X github.com/ncagent/ncagent/broker.Version=...").
var Version = "dev"

// Commit is the source commit, set by the linker.
var Commit = ""
