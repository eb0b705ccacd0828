package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/buildinfo"
	"github.com/ncagent/ncagent/ipc"
)

// SecretStore is the keychain as the agent needs it: the broker's Store for
// refresh tokens and app passwords, plus client secrets of confidential
// OIDC clients. *Keychain implements it.
type SecretStore interface {
	broker.Store
	GetClientSecret(account string) (broker.Secret, error)
	PutClientSecret(account string, secret broker.Secret) error
	DeleteClientSecret(account string) error
}

// Options configures New.
type Options struct {
	ConfigPath string // default ConfigPath()
	StatePath  string // default StatePathFor(ConfigPath)
	// LogLevel, when set, is the level of Logger's handler: the agent sets
	// it from [agent] log_level at start and on every reload. Nil when
	// the level was given on the command line, which wins.
	LogLevel *slog.LevelVar
	// ReloadInterval is how often the agent looks for changes of the two
	// files (default 2s); SIGHUP reloads at once.
	ReloadInterval time.Duration
	Store          SecretStore // required
	Logger         *slog.Logger
	Socket         string // reported in status
	// OpenURL opens a URL in the user's browser for sign-ins that asked the
	// agent to (the tray, the setup page). Default OpenURL.
	OpenURL func(string) error
	Now     func() time.Time
	// SignInTimeout overrides the default sign-in timeouts (tests).
	SignInTimeout time.Duration
	// ChainTimesPath is the file that keeps when each stored refresh token
	// was last refreshed (no secret), so that a restart does not refresh
	// every chain at once. Default: chain-times.json under the user cache
	// dir.
	ChainTimesPath string
	// When Store is nil the agent makes its own, as [agent] store says:
	// the keychain under KeychainService (default "ncagent"), or the file
	// store at FileStorePath (default FileStorePath(ConfigPath)).
	KeychainService string
	FileStorePath   string
	// Idle runs after a burst of requests, once none came for 2 s
	// (ipc.ServerOptions.Idle; nil: the heap's free memory goes back to
	// the OS).
	Idle func()
}

// Agent is the ncagent daemon: it owns every account's refresh chain
// through one broker, keeps the account config, runs sign-ins, and serves
// the ipc.Backend interface. It is safe for concurrent use.
type Agent struct {
	opts    Options
	log     *slog.Logger
	broker  *broker.Broker
	store   SecretStore
	started time.Time
	exec    *execProxy // the ncagent exec proxy (exec.go)

	mu      sync.Mutex             // guards cfg, stamp, logins, subs, lastState
	cfg     *Config                // config.toml merged with the state file; replaced on save and reload
	stamp   string                 // what the two files looked like when cfg was read
	logins  map[string]*loginOp    // sign-ins in progress, by account
	subs    map[chan struct{}]bool // change listeners (the tray)
	closed  bool
	closeCh chan struct{}
}

var _ ipc.Backend = (*Agent)(nil)

// New loads the config and prepares every account's chain. It does not
// touch the network or the keychain: secrets are read on first use.
func New(opts Options) (*Agent, error) {
	if opts.ConfigPath == "" {
		p, err := ConfigPath()
		if err != nil {
			return nil, err
		}
		opts.ConfigPath = p
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OpenURL == nil {
		opts.OpenURL = OpenURL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StatePath == "" {
		p, err := StatePathFor(opts.ConfigPath)
		if err != nil {
			return nil, err
		}
		opts.StatePath = p
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = 2 * time.Second
	}
	stamp := filesStamp(opts.ConfigPath, opts.StatePath)
	files, warnings, err := LoadFiles(opts.ConfigPath, opts.StatePath)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		opts.Logger.Warn("config", "warning", w)
	}
	cfg := files.Config
	setLogLevel(opts.LogLevel, cfg.Agent.LogLevel)
	if opts.Store == nil {
		s, err := openStore(opts, cfg.Agent)
		if err != nil {
			return nil, err
		}
		opts.Store = s
	}
	a := &Agent{
		stamp:   stamp,
		opts:    opts,
		log:     opts.Logger,
		store:   opts.Store,
		started: opts.Now(),
		cfg:     cfg,
		logins:  map[string]*loginOp{},
		subs:    map[chan struct{}]bool{},
		closeCh: make(chan struct{}),
	}
	if opts.ChainTimesPath == "" {
		if p, err := defaultChainTimesPath(); err == nil {
			opts.ChainTimesPath = p
		}
	}
	var times broker.ChainTimesStore
	if opts.ChainTimesPath != "" {
		times = &chainTimesFile{path: opts.ChainTimesPath, log: opts.Logger}
	}
	a.broker = broker.New(broker.Options{
		Store:      opts.Store,
		Logger:     opts.Logger,
		Now:        opts.Now,
		OnEvent:    a.onEvent,
		ChainTimes: times,
	})
	a.exec = newExecProxy(a)
	for _, name := range a.accountNames() {
		if err := a.installAccount(name, cfg.Accounts[name]); err != nil {
			// A bad account must not keep the others from working.
			a.log.Error("account not loaded", "account", name, "err", err)
		}
	}
	return a, nil
}

// installAccount hands an account's config to the broker, with its client
// secret when the client is confidential.
func (a *Agent) installAccount(name string, ac *AccountConfig) error {
	acct, err := ac.Broker(name)
	if err != nil {
		return err
	}
	if acct.Kind == broker.KindOIDC && acct.ClientAuth != "" && acct.ClientAuth != broker.ClientAuthNone {
		sec, err := a.store.GetClientSecret(name)
		if err != nil && !errors.Is(err, broker.ErrNotFound) {
			return err
		}
		acct.ClientSecret = sec
	}
	return a.broker.SetAccount(acct)
}

// Broker returns the agent's broker (for the tray and tests).
func (a *Agent) Broker() *broker.Broker { return a.broker }

// Run serves the API on ln and keeps every chain alive until ctx is done.
// It closes ln on return.
func (a *Agent) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := ipc.NewServer(a, ipc.ServerOptions{Logger: a.log, Socket: a.opts.Socket, Idle: a.opts.Idle})
	errc := make(chan error, 3)
	go a.watchFiles(ctx)
	go func() { errc <- a.broker.Run(ctx) }()
	if w, ok := a.store.(interface {
		Watch(context.Context, func())
	}); ok {
		// A pending write of a rotated refresh token is retried the moment
		// the Secret Service is back, not after its backoff.
		go w.Watch(ctx, a.broker.StoreAvailable)
	}
	go func() { errc <- srv.Run(ctx, ln) }()
	go func() { errc <- a.exec.run(ctx) }()
	// Wait for all: the server's return is what removes the socket, so
	// returning early would leave it behind for a moment.
	var errs []error
	pending := 3
	select {
	case <-ctx.Done():
	case <-a.closeCh:
	case err := <-errc:
		pending--
		errs = append(errs, err)
	}
	// The stop sequence: take no new work (no refresh is sent from now on;
	// requests the cache cannot serve are refused at once, so the server
	// drains quickly), stop the server and the scheduler, then wait for
	// every refresh already sent and store what it rotated.
	a.broker.Stop()
	cancel()
	for ; pending > 0; pending-- {
		errs = append(errs, <-errc)
	}
	sctx, scancel := context.WithTimeout(context.Background(), shutdownWriteWait)
	defer scancel()
	// Shutdown logs one ERROR line per account whose rotated refresh token
	// could not be stored; the error adds nothing to that.
	_ = a.broker.Shutdown(sctx)
	return errors.Join(errs...)
}

// shutdownWriteWait bounds, at shutdown, the retries of a Store write of a
// rotated refresh token that is still only in memory.
const shutdownWriteWait = 10 * time.Second

// Close stops Run. It is safe to call more than once.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		close(a.closeCh)
	}
	return nil
}

// Subscribe returns a channel that receives a value (coalesced) whenever an
// account's state or the account list changes, and a function that ends
// the subscription.
func (a *Agent) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	a.subs[ch] = true
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}
}

func (a *Agent) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (a *Agent) onEvent(ev broker.Event) {
	attrs := []any{"account", ev.Account, "state", ev.State}
	if ev.Err != nil {
		attrs = append(attrs, "cause", ev.Err.Error())
	}
	if ev.State == broker.StateNeedsLogin || ev.State == broker.StateOffline {
		a.log.Warn("account state changed", attrs...)
	} else {
		a.log.Info("account state changed", attrs...)
	}
	a.notify()
}

// account resolves an account name (empty: the default account).
func (a *Agent) account(name string) (string, *AccountConfig, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if name == "" {
		n, err := a.cfg.DefaultAccount()
		if err != nil {
			return "", nil, &ipc.Error{Code: ipc.CodeUnknownAccount, Message: err.Error()}
		}
		name = n
	}
	ac, ok := a.cfg.Accounts[name]
	if !ok {
		return name, nil, &ipc.Error{Code: ipc.CodeUnknownAccount, Account: name,
			Message: fmt.Sprintf("no account %q: run ncagent login %s --server URL to add it", name, name)}
	}
	return name, ac, nil
}

// Status implements ipc.Backend.
func (a *Agent) Status(ctx context.Context) (ipc.StatusResponse, error) {
	resp := ipc.StatusResponse{
		Version:  buildinfo.Version,
		Commit:   buildinfo.Commit,
		PID:      os.Getpid(),
		Socket:   a.opts.Socket,
		Started:  a.started,
		Accounts: []ipc.AccountStatus{},
	}
	resp.ExecSessions = a.execSessions() // exec.go
	resp.DefaultAccount = a.DefaultAccount()
	a.mu.Lock()
	display := map[string]string{}
	for name, ac := range a.cfg.Accounts {
		display[name] = ac.DisplayName
	}
	a.mu.Unlock()
	storeErr := a.storeState(ctx)
	resp.SecretStore = a.storeName(storeErr)
	for _, st := range a.broker.Status() {
		as := ipc.AccountStatus{
			Name:          st.Name,
			Kind:          string(st.Kind),
			Server:        st.Server,
			Issuer:        st.Issuer,
			User:          st.Username,
			DisplayName:   display[st.Name],
			State:         string(st.State),
			Degraded:      st.Degraded,
			Scopes:        st.Scopes,
			RefreshExpiry: st.RefreshExpiry,
			LastRefresh:   st.LastRefresh,
			LastError:     st.LastError,
		}
		if a.signingIn(st.Name) {
			as.State = "signing-in"
		}
		if storeErr != nil {
			as.Store = storeCause(storeErr)
			if as.State == string(broker.StateSignedOut) {
				// Not known to be signed out: the secret cannot be read.
				as.State = storeStateName(storeErr)
			}
		}
		for _, t := range st.Tokens {
			if st.Kind == broker.KindAppPassword {
				break // an app password is no token with an expiry
			}
			as.Tokens = append(as.Tokens, ipc.CachedToken{Audience: t.Audience, Scopes: t.Scopes, ExpiresAt: t.Expiry})
		}
		resp.Accounts = append(resp.Accounts, as)
	}
	return resp, nil
}

func (a *Agent) signingIn(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.logins[name]
	return ok
}

// Token implements ipc.Backend.
func (a *Agent) Token(ctx context.Context, peer ipc.Peer, req ipc.TokenRequest) (ipc.TokenResponse, error) {
	name, ac, err := a.account(req.Account)
	if err != nil {
		return ipc.TokenResponse{}, err
	}
	if err := checkTokenScopes(name, ac, req.Scopes); err != nil {
		return ipc.TokenResponse{}, err
	}
	if req.MinValidSeconds < 0 || req.MinValidSeconds > 24*3600 {
		return ipc.TokenResponse{}, &ipc.Error{Code: ipc.CodeInvalidRequest, Account: name,
			Message: "min_valid_seconds must be between 0 and 86400"}
	}
	tok, err := a.broker.Token(ctx, broker.TokenRequest{
		Account:  name,
		Scopes:   req.Scopes,
		Audience: req.Audience,
		MinValid: time.Duration(req.MinValidSeconds) * time.Second,
	})
	if err != nil {
		return ipc.TokenResponse{}, scopeHint(name, ac, req.Scopes, wireError(name, err))
	}
	return a.tokenResponse(tok), nil
}

// Exchange implements ipc.Backend.
func (a *Agent) Exchange(ctx context.Context, peer ipc.Peer, req ipc.ExchangeRequest) (ipc.TokenResponse, error) {
	name, _, err := a.account(req.Account)
	if err != nil {
		return ipc.TokenResponse{}, err
	}
	if req.SubjectToken == "" {
		return ipc.TokenResponse{}, &ipc.Error{Code: ipc.CodeInvalidRequest, Account: name, Message: "subject_token is required"}
	}
	tok, err := a.broker.Exchange(ctx, broker.ExchangeRequest{
		Account:          name,
		SubjectToken:     broker.Secret(req.SubjectToken),
		SubjectTokenType: req.SubjectTokenType,
		Audience:         req.Audience,
		Scopes:           req.Scopes,
		ActorToken:       broker.Secret(req.ActorToken),
		ActorTokenType:   req.ActorTokenType,
	})
	if err != nil {
		return ipc.TokenResponse{}, wireError(name, err)
	}
	return a.tokenResponse(tok), nil
}

func (a *Agent) tokenResponse(t broker.Token) ipc.TokenResponse {
	r := ipc.TokenResponse{
		Account:         t.Account,
		TokenType:       t.TokenType,
		AccessToken:     t.AccessToken.Reveal(),
		Authorization:   t.Authorization(),
		Scope:           t.Scope(),
		Username:        t.Username,
		Server:          t.Server,
		IssuedTokenType: t.IssuedTokenType,
	}
	if !t.Expiry.IsZero() {
		r.ExpiresAt = t.Expiry.UTC().Truncate(time.Second)
		r.ExpiresIn = int64(t.Expiry.Sub(a.opts.Now()) / time.Second)
	}
	return r
}

// Revoke implements ipc.Backend. The account stays configured, signed out,
// so that it can be signed in again from the tray or the CLI.
func (a *Agent) Revoke(ctx context.Context, peer ipc.Peer, req ipc.RevokeRequest) (ipc.RevokeResponse, error) {
	if req.Account == "" {
		return ipc.RevokeResponse{}, &ipc.Error{Code: ipc.CodeInvalidRequest, Message: "account is required"}
	}
	name, _, err := a.account(req.Account)
	if err != nil {
		var we *ipc.Error
		if req.Forget && errors.As(err, &we) && we.Code == ipc.CodeUnknownAccount && name != "" {
			// A broken entry the agent does not serve: its secrets go anyway.
			if ferr := a.forget(name, true); ferr != nil {
				return ipc.RevokeResponse{}, ferr
			}
		}
		return ipc.RevokeResponse{}, err
	}
	res, err := a.broker.Revoke(ctx, name)
	if err != nil {
		return ipc.RevokeResponse{}, wireError(name, err)
	}
	if req.Forget {
		if err := a.forget(name, false); err != nil {
			return ipc.RevokeResponse{}, err
		}
	}
	a.log.Info("revoked", "account", name, "where", res.Where, "server_revoked", res.ServerRevoked, "peer_pid", peer.PID)
	a.notify()
	return ipc.RevokeResponse{
		Account:       name,
		Where:         res.Where,
		Endpoint:      res.Endpoint,
		ServerRevoked: res.ServerRevoked,
		SecretDeleted: res.SecretDeleted,
		PurgedTokens:  res.PurgedTokens,
		Note:          res.Note,
	}, nil
}

// forget deletes the secrets of account name from the agent's store (see
// ipc.RevokeRequest.Forget): its client secret, and its refresh token or
// app password too when all (the broker's Revoke deletes that one).
func (a *Agent) forget(name string, all bool) error {
	if all {
		if err := a.store.Delete(name); err != nil {
			return wireError(name, fmt.Errorf("forget account %s: %w", name, err))
		}
	}
	if err := a.store.DeleteClientSecret(name); err != nil {
		return wireError(name, fmt.Errorf("forget account %s: delete client secret: %w", name, err))
	}
	a.log.Info("secrets forgotten", "account", name)
	return nil
}

// wireError translates a broker error into the wire error of ARCHITECTURE.md.
// Messages name the account and what to do next; they never carry secrets
// (broker errors never do).
func wireError(account string, err error) error {
	var we *ipc.Error
	if errors.As(err, &we) {
		return we
	}
	var idp *broker.IdPError
	switch {
	case errors.Is(err, broker.ErrUnknownAccount):
		return &ipc.Error{Code: ipc.CodeUnknownAccount, Account: account,
			Message: fmt.Sprintf("no account %q: run ncagent login %s --server URL to add it", account, account)}
	case errors.Is(err, broker.ErrNeedsLogin), errors.Is(err, broker.ErrSignedOut):
		return &ipc.Error{Code: ipc.CodeNeedsLogin, Account: account,
			Message: fmt.Sprintf("account %s needs sign-in: run ncagent login %s", account, account)}
	case errors.Is(err, broker.ErrSubjectToken), errors.Is(err, broker.ErrBadRequest):
		return &ipc.Error{Code: ipc.CodeInvalidRequest, Account: account, Message: err.Error()}
	case isStoreUnavailable(err):
		// Nothing was sent: the store could not keep a rotated secret.
		return storeLockedError(account, err)
	case errors.Is(err, broker.ErrUnavailable):
		// Retries spent on 5xx, 429, network faults or timeouts: the
		// provider is unavailable, whatever its last answer was (the
		// message carries its last status). Only a definite OAuth error
		// below is idp_error.
		return &ipc.Error{Code: ipc.CodeIdPUnavailable, Account: account,
			Message: err.Error() + ": try again later, or check the identity provider"}
	case errors.Is(err, context.DeadlineExceeded):
		return &ipc.Error{Code: ipc.CodeTimeout, Account: account, Message: "the identity provider did not answer in time: " + err.Error()}
	case errors.As(err, &idp):
		return &ipc.Error{Code: ipc.CodeIdPError, Account: account, IdPError: idp.Code, Message: err.Error()}
	}
	return &ipc.Error{Code: ipc.CodeInternal, Account: account, Message: err.Error()}
}

// accountNames returns the configured account names, sorted.
func (a *Agent) accountNames() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.cfg.Accounts))
	for n := range a.cfg.Accounts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
