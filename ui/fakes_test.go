package ui

import (
	"context"
	"sync"

	"github.com/ncagent/ncagent/ipc"
)

// fakeBackend is a hand-written Backend: it serves a status set by the
// test, records Login and Revoke calls, and runs loginFn/revokeFn when set.
type fakeBackend struct {
	mu        sync.Mutex // guards every field below
	status    ipc.StatusResponse
	statusErr error
	logins    []ipc.LoginRequest
	revokes   []ipc.RevokeRequest
	loginFn   func(ctx context.Context, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error)
	revokeFn  func(req ipc.RevokeRequest) (ipc.RevokeResponse, error)
	subs      map[chan struct{}]bool
}

var _ Backend = (*fakeBackend)(nil)

func newFakeBackend(accounts ...ipc.AccountStatus) *fakeBackend {
	return &fakeBackend{status: ipc.StatusResponse{Version: "test", Accounts: accounts}, subs: map[chan struct{}]bool{}}
}

func (f *fakeBackend) Status(ctx context.Context) (ipc.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Accounts = append([]ipc.AccountStatus(nil), f.status.Accounts...)
	return st, f.statusErr
}

func (f *fakeBackend) Login(ctx context.Context, peer ipc.Peer, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error) {
	f.mu.Lock()
	f.logins = append(f.logins, req)
	fn := f.loginFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req, progress)
	}
	return ipc.LoginEvent{Type: "done", Account: req.Account, State: stateSignedIn, User: "alice"}, nil
}

func (f *fakeBackend) Revoke(ctx context.Context, peer ipc.Peer, req ipc.RevokeRequest) (ipc.RevokeResponse, error) {
	f.mu.Lock()
	f.revokes = append(f.revokes, req)
	fn := f.revokeFn
	f.mu.Unlock()
	if fn != nil {
		return fn(req)
	}
	return ipc.RevokeResponse{Account: req.Account, SecretDeleted: true}, nil
}

func (f *fakeBackend) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// setAccount replaces (or adds) an account's status and tells subscribers,
// like the agent does on a state change.
func (f *fakeBackend) setAccount(a ipc.AccountStatus) { f.update(a, true) }

// setAccountQuietly changes an account's status without telling
// subscribers, like the agent when a retried keychain write succeeds.
func (f *fakeBackend) setAccountQuietly(a ipc.AccountStatus) { f.update(a, false) }

func (f *fakeBackend) update(a ipc.AccountStatus, notify bool) {
	f.mu.Lock()
	replaced := false
	for i := range f.status.Accounts {
		if f.status.Accounts[i].Name == a.Name {
			f.status.Accounts[i] = a
			replaced = true
		}
	}
	if !replaced {
		f.status.Accounts = append(f.status.Accounts, a)
	}
	for ch := range f.subs {
		if !notify {
			break
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.mu.Unlock()
}

// setStatus changes the whole status and tells subscribers.
func (f *fakeBackend) setStatus(change func(st *ipc.StatusResponse)) {
	f.mu.Lock()
	change(&f.status)
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.mu.Unlock()
}

func (f *fakeBackend) calls() (logins []ipc.LoginRequest, revokes []ipc.RevokeRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ipc.LoginRequest(nil), f.logins...), append([]ipc.RevokeRequest(nil), f.revokes...)
}
