package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// loginOp is one sign-in in progress. Requests for the same account join it
// instead of starting another: they see the events so far and the result.
type loginOp struct {
	ctx    context.Context // ends when the sign-in is cancelled or over
	done   chan struct{}
	cancel context.CancelFunc

	mu      sync.Mutex // guards events, subs, waiters, result, err
	events  []ipc.LoginEvent
	subs    map[int]func(ipc.LoginEvent)
	nextSub int
	waiters int
	result  ipc.LoginEvent
	err     error
}

func (op *loginOp) emit(ev ipc.LoginEvent) {
	op.mu.Lock()
	op.events = append(op.events, ev)
	subs := slices.Collect(maps.Values(op.subs))
	op.mu.Unlock()
	for _, f := range subs {
		f(ev)
	}
}

// join replays the events so far to f and subscribes it to the next ones.
func (op *loginOp) join(f func(ipc.LoginEvent)) (leave func()) {
	op.mu.Lock()
	for _, ev := range op.events {
		f(ev)
	}
	id := op.nextSub
	op.nextSub++
	op.subs[id] = f
	op.waiters++
	op.mu.Unlock()
	return func() {
		op.mu.Lock()
		delete(op.subs, id)
		op.waiters--
		last := op.waiters == 0
		op.mu.Unlock()
		if last {
			// Nobody waits for this sign-in any more: end it cleanly.
			op.cancel()
		}
	}
}

// EventJoined is the type of the first event a login request receives when
// it joined a sign-in already in progress for the account, instead of
// starting one. The events so far (the URL to open or the code to enter)
// follow; a client should show them but not open another browser tab.
const EventJoined = "joined"

// Login implements ipc.Backend: it runs a sign-in for req.Account, or joins
// the one already running for it. The sign-in ends when it succeeds, fails,
// times out, or every requester has gone away.
func (a *Agent) Login(ctx context.Context, peer ipc.Peer, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	if err := ValidateAccountName(req.Account); err != nil {
		return ipc.LoginEvent{}, &ipc.Error{Code: ipc.CodeInvalidRequest, Account: req.Account, Message: err.Error()}
	}
	name := req.Account
	req.OpenBrowser = req.OpenBrowser && a.browserAllowed(peer, name)
	if err := a.signInStoreCheck(ctx, name); err != nil {
		return ipc.LoginEvent{}, err // before any page opens (signin_store.go)
	}
	a.mu.Lock()
	op, joined := a.logins[name]
	if joined && op.ctx.Err() != nil {
		// Everyone left it and it is winding down: joining would only
		// bring its cancellation. Start afresh.
		joined = false
	}
	if !joined {
		opCtx, cancel := context.WithCancel(context.Background())
		op = &loginOp{ctx: opCtx, done: make(chan struct{}), cancel: cancel, subs: map[int]func(ipc.LoginEvent){}}
		a.logins[name] = op
		go a.runLoginOpSafe(opCtx, name, req, op)
	}
	a.mu.Unlock()
	if joined {
		a.log.Info("sign-in joined", "account", name, "peer_pid", peer.PID)
		// Said first, so that a client knows the events replayed next
		// (the URL to open among them) belong to a sign-in whose browser
		// tab is already open: it shows the URL but opens no second tab.
		progress(ipc.LoginEvent{Type: EventJoined, Account: name,
			Message: fmt.Sprintf("a sign-in of %s is already in progress: joining it (finish it in the browser tab already open)", name)})
	} else {
		a.log.Info("sign-in started", "account", name, "method", req.Method, "peer_pid", peer.PID)
		a.notify()
	}
	leave := op.join(progress)
	defer leave()
	select {
	case <-op.done:
		op.mu.Lock()
		defer op.mu.Unlock()
		return op.result, op.err
	case <-ctx.Done():
		return ipc.LoginEvent{}, ctx.Err()
	}
}

func (a *Agent) runLoginOp(ctx context.Context, name string, req ipc.LoginRequest, op *loginOp) {
	emit := op.emit
	var opened []string // URLs opened: their trampolines go when the sign-in ends
	defer func() {
		for _, u := range opened {
			ForgetURL(u)
		}
	}()
	if req.OpenBrowser {
		emit = func(ev ipc.LoginEvent) {
			if ev.Type == "open_url" && ev.URL != "" {
				opened = append(opened, ev.URL)
				if err := a.opts.OpenURL(ev.URL); err != nil {
					a.log.Warn("could not open the browser", "account", name, "err", err)
				}
			}
			op.emit(ev)
		}
	}
	res, err := a.signIn(ctx, name, req, emit)
	if err != nil {
		a.log.Warn("sign-in failed", "account", name, "err", err)
	} else {
		a.log.Info("signed in", "account", name, "user", res.User)
	}
	op.mu.Lock()
	op.result, op.err = res, err
	op.mu.Unlock()
	a.mu.Lock()
	if a.logins[name] == op { // a newer sign-in may have replaced a cancelled one
		delete(a.logins, name)
	}
	a.mu.Unlock()
	op.cancel()
	close(op.done)
	a.notify()
}

// signIn runs one sign-in of account name: plan (planSignIn), run
// (runSignIn), and, only when it succeeded, commit (commitSignIn), which
// replaces the account's secret and config.
func (a *Agent) signIn(ctx context.Context, name string, req ipc.LoginRequest, emit func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	old := a.currentAccountConfig(name)
	plan, err := planSignIn(name, req, old)
	if err != nil {
		return ipc.LoginEvent{}, err
	}
	acct, res, err := a.runSignIn(ctx, &plan, emit)
	if err != nil {
		return ipc.LoginEvent{}, err
	}
	return a.commitSignIn(plan, old, acct, res)
}

// runSignIn gets the new credentials plan asks for, choosing the method by
// discovery when the plan leaves it open (and saying so in a "method"
// event). It changes nothing of the account; it returns the broker's
// account as the commit installs it.
func (a *Agent) runSignIn(ctx context.Context, p *signInPlan, emit func(ipc.LoginEvent)) (broker.Account, signInResult, error) {
	caPEM, client, err := p.httpClient()
	if err != nil {
		return broker.Account{}, signInResult{}, err
	}
	if p.method == "" {
		method, reason := chooseMethod(ctx, client, p.ac.Server, p.ac.Issuer, p.ac.ClientID)
		emit(ipc.LoginEvent{Type: "method", Account: p.name, Method: method, Reason: reason})
		if err := p.withMethod(method); err != nil {
			return broker.Account{}, signInResult{}, err
		}
	}
	acct, err := p.ac.Broker(p.name)
	if err != nil {
		return broker.Account{}, signInResult{}, invalidSignIn(p.name, "%v", err)
	}
	acct.CAPEM = caPEM
	acct.ClientSecret = a.clientSecret(p, acct)
	sr := signInRequest{
		Account: p.name, Method: p.method,
		Server: acct.Server, Issuer: acct.Issuer, Scopes: acct.Scopes,
		ClientID: acct.ClientID, ClientSecret: acct.ClientSecret, ClientAuth: acct.ClientAuth,
		HTTP: client, RedirectHost: p.ac.RedirectHost,
		Timeout: a.opts.SignInTimeout, Progress: emit, Now: a.opts.Now,
	}
	res, err := a.runFlow(ctx, sr, acct)
	return acct, res, err
}

// httpClient returns the CA bundle of the sign-in (the request's, else
// the account's CA file) and an HTTP client trusting it.
func (p *signInPlan) httpClient() ([]byte, *http.Client, error) {
	var caPEM []byte
	if p.caPEM != "" {
		caPEM = []byte(p.caPEM)
	} else if p.ac.CAFile != "" {
		b, err := readCAFile(p.ac.CAFile)
		if err != nil {
			return nil, nil, invalidSignIn(p.name, "%v", err)
		}
		caPEM = b
	}
	client, err := broker.NewHTTPClient(broker.HTTPOptions{CAPEM: caPEM})
	if err != nil {
		return nil, nil, invalidSignIn(p.name, "%v", err)
	}
	return caPEM, client, nil
}

// clientSecret is the client secret of the sign-in: the request's, else,
// for a confidential client, the one the store keeps (none if it has none).
func (a *Agent) clientSecret(p *signInPlan, acct broker.Account) broker.Secret {
	if p.clientSecret != "" || acct.ClientAuth == "" || acct.ClientAuth == broker.ClientAuthNone {
		return p.clientSecret
	}
	s, err := a.store.GetClientSecret(p.name)
	if err != nil {
		return ""
	}
	return s
}

// runFlow runs the sign-in flow of sr.Method: for OpenID Connect with the
// broker's Provider of acct (discovery cached, keys shared).
func (a *Agent) runFlow(ctx context.Context, sr signInRequest, acct broker.Account) (signInResult, error) {
	var res signInResult
	var err error
	switch sr.Method {
	case MethodBrowser, MethodDevice:
		p, perr := a.broker.Provider(ctx, acct)
		if perr != nil {
			return signInResult{}, wireError(sr.Account, perr)
		}
		sr.idp = p
		if sr.Method == MethodBrowser {
			res, err = signInBrowser(ctx, sr)
		} else {
			res, err = signInDevice(ctx, sr)
		}
	default:
		res, err = signInAppPassword(ctx, sr)
	}
	if err != nil {
		return signInResult{}, signInWireError(sr.Account, err)
	}
	return res, nil
}

// commitSignIn keeps what a successful sign-in res brought: the client
// secret the request gave, the broker's account, the new secret (stored
// before anything else changes; on failure the broker goes back to old),
// then the config. The event says who is signed in where.
func (a *Agent) commitSignIn(p signInPlan, old *AccountConfig, acct broker.Account, res signInResult) (ipc.LoginEvent, error) {
	name, ac := p.name, p.ac
	if res.Kind == broker.KindAppPassword {
		acct.Server, ac.Server = res.Server, res.Server
	}
	if res.Username != "" {
		ac.User, acct.Username = res.Username, res.Username
	}
	if res.DisplayName != "" {
		ac.DisplayName = res.DisplayName
	}
	if p.storeSecret {
		if err := a.store.PutClientSecret(name, p.clientSecret); err != nil {
			return ipc.LoginEvent{}, wireError(name, err)
		}
	}
	if err := a.broker.SetAccount(acct); err != nil {
		return ipc.LoginEvent{}, wireError(name, err)
	}
	storeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.broker.SignedIn(storeCtx, name, res.Secret, res.Initial, res.RefreshExpiry); err != nil {
		err = a.revokeUnstored(storeCtx, acct, res.Secret, err)
		a.restoreAccount(name, old)
		return ipc.LoginEvent{}, wireError(name, err)
	}
	if err := a.saveAccount(name, ac); err != nil {
		if old == nil {
			// A new account whose config cannot be saved would leave its
			// secret in the keychain with no account to own it: undo the
			// sign-in.
			return ipc.LoginEvent{}, a.undoSignIn(name, p.storeSecret, err)
		}
		return ipc.LoginEvent{}, &ipc.Error{Code: ipc.CodeInternal, Account: name,
			Message: fmt.Sprintf("signed in, but the config could not be saved (the account works until the agent stops): %v", err)}
	}
	return ipc.LoginEvent{Type: "done", Account: name, Method: p.method, State: string(broker.StateSignedIn),
		User: ac.User, Message: fmt.Sprintf("signed in to %s as %s", signedInTo(ac), displayUser(ac))}, nil
}

// undoSignIn rolls back the sign-in of a new account whose config could
// not be saved (saveErr): the new grant is revoked at the provider, which
// also deletes the keychain entry and forgets the account, so no secret is
// left without an account.
func (a *Agent) undoSignIn(name string, clientSecret bool, saveErr error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	undone := "the sign-in was undone (its grant revoked at the provider)"
	res, err := a.broker.Revoke(ctx, name)
	if err != nil || !res.SecretDeleted {
		if derr := a.store.Delete(name); derr != nil {
			a.log.Error("sign-in undone, but its secret could not be deleted from the keychain", "account", name, "err", derr)
		}
		undone = "the sign-in was undone"
	} else if !res.ServerRevoked {
		undone = "the sign-in was undone (the provider did not confirm the revocation: " + res.Note + ")"
	}
	if clientSecret {
		a.store.DeleteClientSecret(name)
	}
	a.broker.RemoveAccount(name)
	a.log.Warn("new account's config not saved: sign-in undone", "account", name, "err", saveErr)
	return &ipc.Error{Code: ipc.CodeInternal, Account: name,
		Message: fmt.Sprintf("the config could not be saved (%v): %s; make the config directory writable and run ncagent login %s again", saveErr, undone, name)}
}

func displayUser(ac *AccountConfig) string {
	if ac.DisplayName != "" && ac.DisplayName != ac.User {
		return fmt.Sprintf("%s (%s)", ac.User, ac.DisplayName)
	}
	return ac.User
}

// restoreAccount puts the broker back to the account's previous config
// after a sign-in that could not be stored.
func (a *Agent) restoreAccount(name string, old *AccountConfig) {
	if old == nil {
		a.broker.RemoveAccount(name)
		return
	}
	if err := a.installAccount(name, old); err != nil {
		a.log.Error("restore account", "account", name, "err", err)
	}
}

// saveAccount records the account in the state file (never in the
// user's config.toml) and the agent's view; see saveSignedIn.
func (a *Agent) saveAccount(name string, ac *AccountConfig) error {
	return a.saveSignedIn(name, ac)
}

// signInWireError maps sign-in failures to wire errors that say what to do
// next.
func signInWireError(name string, err error) error {
	again := "run ncagent login " + name + " again"
	switch {
	case errors.Is(err, ErrSignInTimeout):
		// ErrSignInTimeout's text already says to run the login again.
		return &ipc.Error{Code: ipc.CodeTimeout, Account: name, Message: err.Error()}
	case errors.Is(err, ErrSignInDenied):
		return signInIdPError(name, err, again+" and allow access")
	case errors.Is(err, ErrSignInState):
		return signInIdPError(name, err, again)
	case errors.Is(err, ErrIDToken):
		return signInIdPError(name, err, fmt.Sprintf("check the issuer and client id of account %s, then %s", name, again))
	case errors.Is(err, ErrSignInRefused):
		// Its text already says what to do.
		return &ipc.Error{Code: ipc.CodeIdPError, Account: name, IdPError: "unauthorized", Message: err.Error()}
	case errors.Is(err, ErrNoRefreshToken):
		// Its text already names the fix (allow offline_access).
		return signInIdPError(name, err, "")
	case errors.Is(err, context.Canceled):
		return &ipc.Error{Code: ipc.CodeTimeout, Account: name, Message: "sign-in cancelled: " + again}
	}
	return wireError(name, err)
}

// signInIdPError is an idp_error carrying the IdP's RFC 6749 error code
// when err wraps one, with next appended to the message.
func signInIdPError(name string, err error, next string) *ipc.Error {
	msg := err.Error()
	if next != "" {
		msg = strings.TrimRight(msg, ". ") + ": " + next
	}
	e := &ipc.Error{Code: ipc.CodeIdPError, Account: name, Message: msg}
	var idp *broker.IdPError
	if errors.As(err, &idp) {
		e.IdPError = idp.Code
	}
	return e
}
