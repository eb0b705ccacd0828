package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// TestKeychainWritableLockState: Writable follows the real collection's
// lock state, and neither it nor Get/Put prompt while it is locked.
func TestKeychainWritableLockState(t *testing.T) {
	if !inOwnKeyring(t) {
		return
	}
	ctl := newKeyringCtl(t)
	k := NewKeychain("ncagent-test-writable", 5*time.Second)
	t.Cleanup(func() { k.Delete("work") })
	if err := k.Writable(t.Context()); err != nil {
		t.Fatalf("Writable while unlocked: got %v, want nil", err)
	}
	if err := k.Put("work", testSecret); err != nil {
		t.Fatal(err)
	}
	ctl.lock(t)
	if err := k.Writable(t.Context()); !errors.Is(err, ErrKeychainLocked) {
		t.Fatalf("Writable while locked: got %v, want ErrKeychainLocked", err)
	}
	start := time.Now()
	if _, err := k.Get("work"); !errors.Is(err, ErrKeychainLocked) {
		t.Fatalf("Get while locked: got %v, want ErrKeychainLocked", err)
	}
	if err := k.Put("work", testSecret+"2"); !errors.Is(err, ErrKeychainLocked) {
		t.Fatalf("Put while locked: got %v, want ErrKeychainLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Get and Put while locked took %v: did they wait for a prompt?", d)
	}
	ctl.unlock(t)
	if got, err := k.Get("work"); err != nil || got != testSecret {
		t.Fatalf("Get after unlock: got (%q, %v), want the secret stored before the lock", got, err)
	}
}

// restartWithClock stops e's agent and starts another on the same config
// and store, on clock, returning its client.
func restartWithClock(t *testing.T, e *e2e, store SecretStore, clock *testutil.Clock, suffix string) (*Agent, *ipc.Client) {
	t.Helper()
	cfgPath := e.agent.opts.ConfigPath
	e.agent.Close()
	a, err := New(Options{ConfigPath: cfgPath, Store: store, Logger: e.agent.log, Socket: e.socket + suffix, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, serveAgent(t, a, e.socket+suffix)
}

// TestLockedKeychainNeverRotates: with the real gnome-keyring and fosite
// revoking the whole grant on refresh token reuse, 50 forced refreshes run,
// the collection locked after 20. Every answer is a token or store_locked,
// no refresh grant is sent while locked, a cached token still serves, and
// after unlock tokens flow again with no sign-in (the grant was never
// reused).
func TestLockedKeychainNeverRotates(t *testing.T) {
	if !inOwnKeyring(t) {
		return
	}
	e := startE2E(t)
	ctl := newKeyringCtl(t)
	// The agent's clock: advancing it makes cached tokens age, so that a
	// request needs a refresh without asking for more than the token
	// lifetime.
	clock := testutil.NewClock(time.Now())
	agent, client := restartWithClock(t, e, e.kc, clock, "c")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	token := func(minValid int64) (ipc.TokenResponse, error) {
		tok, err := client.Token(ctx, ipc.TokenRequest{Account: "work", MinValidSeconds: minValid})
		if err == nil {
			e.secrets = append(e.secrets, tok.AccessToken)
		}
		return tok, err
	}
	if _, err := token(0); err != nil {
		t.Fatalf("first token: %v", err)
	}
	var tokens, locked int
	var sentWhileLocked int
	watch := watchUnlocks(t)
	var unlocksBefore int
	for i := range 50 {
		if i == 20 {
			// go-keyring's Get calls Unlock (on the unlocked collection):
			// the monitor must see that one.
			if _, err := e.kc.Get("work"); err != nil {
				t.Fatal(err)
			}
			unlocksBefore, _ = watch.counts()
			ctl.lock(t)
			// A cached token that meets the request still serves.
			if _, err := token(0); err != nil {
				t.Fatalf("cached token right after the lock: %v", err)
			}
		}
		before := e.idp.Calls("refresh_token")
		// Two minutes on, a token of five has three left: asking for four
		// needs a refresh.
		clock.Advance(2 * time.Minute)
		tok, err := token(240)
		var we *ipc.Error
		switch {
		case err == nil:
			tokens++
			if !tok.ExpiresAt.After(clock.Now()) {
				t.Fatalf("request %d: served an expired token", i)
			}
		case errors.As(err, &we) && we.Code == ipc.CodeStoreLocked:
			locked++
			if i < 20 {
				t.Fatalf("request %d before the lock: got %v", i, err)
			}
		default:
			t.Fatalf("request %d: got %v, want a token or store_locked", i, err)
		}
		if i >= 20 {
			sentWhileLocked += e.idp.Calls("refresh_token") - before
		} else if got := e.idp.Calls("refresh_token") - before; got == 0 {
			t.Fatalf("request %d before the lock: no refresh was needed, the test forces none", i)
		}
	}
	if sentWhileLocked != 0 {
		t.Errorf("refresh grants sent while the keychain was locked: got %d, want 0", sentWhileLocked)
	}
	if locked != 30 { // requests 20..49
		t.Errorf("store_locked answers: got %d, want 30", locked)
	}
	st, err := client.Status(ctx)
	if err != nil || len(st.Accounts) != 1 {
		t.Fatalf("status: %v", err)
	}
	if got, want := st.Accounts[0].Store, "keychain locked: run ncagent unlock"; got != want {
		t.Errorf("status while locked: store %q, want %q", got, want)
	}
	if got, want := st.SecretStore, "keychain: keychain locked: run ncagent unlock"; got != want {
		t.Errorf("status while locked: secret_store %q, want %q", got, want)
	}
	// Background requests never asked the Secret Service to unlock.
	if unlocks, prompts := watch.counts(); unlocks != unlocksBefore || prompts != 0 {
		t.Errorf("while locked: %d Unlock calls and %d prompts, want none", unlocks-unlocksBefore, prompts)
	}
	if unlocksBefore == 0 {
		t.Error("the D-Bus monitor saw no Unlock call of go-keyring's Get before the lock: it does not work")
	}
	// A sign-in would be lost: it fails before it starts.
	authBefore := e.idp.Authorizations()
	var events []ipc.LoginEvent
	_, err = agent.Login(ctx, ipc.Peer{}, ipc.LoginRequest{Account: "home", Server: e.idp.Issuer(), ClientID: "ncagent"},
		func(ev ipc.LoginEvent) { events = append(events, ev) })
	if we := (*ipc.Error)(nil); !errors.As(err, &we) || we.Code != ipc.CodeStoreLocked || !strings.Contains(we.Message, "the keychain is locked") {
		t.Errorf("sign-in while locked: got %v, want store_locked naming the locked keychain", err)
	}
	if len(events) != 0 || e.idp.Authorizations() != authBefore {
		t.Errorf("sign-in while locked: %d events, %d authorizations; want none", len(events), e.idp.Authorizations()-authBefore)
	}
	ctl.unlock(t)
	for i := range 3 {
		before := e.idp.Calls("refresh_token")
		clock.Advance(2 * time.Minute)
		if _, err := token(240); err != nil {
			t.Fatalf("token %d after unlock: %v (the grant was lost?)", i, err)
		}
		if e.idp.Calls("refresh_token") == before {
			t.Fatalf("token %d after unlock: no refresh", i)
		}
	}
	stored, err := e.kc.Get("work")
	if err != nil {
		t.Fatal(err)
	}
	if !e.idp.RefreshTokenActive(stored.Reveal()) {
		t.Errorf("the refresh token in the keychain is not active at the provider")
	}
	t.Logf("tokens %d, store_locked %d", tokens, locked)
}

var _ broker.WritableStore = (*Keychain)(nil)

// TestLockBetweenCheckAndWrite: the store locks after the check passed, so
// the rotated refresh token cannot be written. The agent keeps it in
// memory and never sends the superseded one; once the keychain opens the
// pending write lands, and a restarted agent continues the chain with no
// sign-in.
func TestLockBetweenCheckAndWrite(t *testing.T) {
	if !inOwnKeyring(t) {
		return
	}
	e := startE2E(t)
	ctl := newKeyringCtl(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := e.client.Token(ctx, ipc.TokenRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	// A second agent on the same keychain and config, whose store locks
	// between its check and its write.
	cfgPath := e.agent.opts.ConfigPath
	racy := &afterCheck{Keychain: e.kc}
	clock := testutil.NewClock(time.Now())
	a, c := restartWithClock(t, e, racy, clock, "2")
	// Load the account first (its first token is the stored sign-in's).
	if _, err := c.Token(ctx, ipc.TokenRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	racy.arm(func() { ctl.lock(t) })
	clock.Advance(2 * time.Minute)
	before := e.idp.Calls("refresh_token")
	tok, err := c.Token(ctx, ipc.TokenRequest{Account: "work", MinValidSeconds: 240})
	if err != nil {
		t.Fatalf("token with the store locked after the check: %v", err)
	}
	e.secrets = append(e.secrets, tok.AccessToken)
	if got := e.idp.Calls("refresh_token") - before; got != 1 {
		t.Fatalf("refresh grants: got %d, want 1", got)
	}
	st, err := c.Status(ctx)
	if err != nil || !st.Accounts[0].Degraded {
		t.Fatalf("status after the failed write: got %+v (%v), want degraded", st.Accounts, err)
	}
	// While locked, a forced refresh is refused without sending the old
	// token again.
	clock.Advance(2 * time.Minute)
	if _, err := c.Token(ctx, ipc.TokenRequest{Account: "work", MinValidSeconds: 240}); err == nil {
		t.Fatal("forced refresh while locked and unsaved: got a token, want store_locked")
	} else if we := (*ipc.Error)(nil); !errors.As(err, &we) || we.Code != ipc.CodeStoreLocked {
		t.Fatalf("forced refresh while locked: got %v, want store_locked", err)
	}
	if got := e.idp.Calls("refresh_token") - before; got != 1 {
		t.Fatalf("refresh grants while locked: got %d, want still 1", got)
	}
	ctl.unlock(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err == nil && !st.Accounts[0].Degraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending write did not land within 15s of the unlock: %+v", st.Accounts)
		}
		time.Sleep(100 * time.Millisecond)
		clock.Advance(time.Second) // the agent's retry backoff runs on its clock
	}
	a.Close()
	// A third agent: the chain continues from the keychain.
	a3, err := New(Options{ConfigPath: cfgPath, Store: e.kc, Logger: e.agent.log, Socket: e.socket + "3", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c3 := serveAgent(t, a3, e.socket+"3")
	if _, err := c3.Token(ctx, ipc.TokenRequest{Account: "work"}); err != nil {
		t.Fatalf("token after restart: %v", err)
	}
	clock.Advance(2 * time.Minute)
	before = e.idp.Calls("refresh_token")
	tok, err = c3.Token(ctx, ipc.TokenRequest{Account: "work", MinValidSeconds: 240})
	if err != nil {
		t.Fatalf("token after restart: %v (the chain was lost)", err)
	}
	e.secrets = append(e.secrets, tok.AccessToken)
	if e.idp.Calls("refresh_token") == before {
		t.Error("no refresh after restart: the chain was not exercised")
	}
	stored, _ := e.kc.Get("work")
	if !e.idp.RefreshTokenActive(stored.Reveal()) {
		t.Error("the stored refresh token is not active at the provider")
	}
}

// TestKeychainUnlockAsksOnce: ncagent unlock on a locked keychain asks the
// Secret Service to unlock (its prompt; nobody answers it here) once for
// concurrent callers, and says the keychain stays locked.
func TestKeychainUnlockAsksOnce(t *testing.T) {
	if !inOwnKeyring(t) {
		return
	}
	ctl := newKeyringCtl(t)
	watch := watchUnlocks(t)
	k := NewKeychain("ncagent-test-unlock", 5*time.Second)
	ctl.lock(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- k.Unlock(ctx) }()
	}
	for range 3 {
		if err := <-errs; err == nil {
			t.Error("Unlock with nobody at the prompt: got nil, want an error")
		} else if !errors.Is(err, ErrKeychainLocked) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Unlock: got %v, want locked or the prompt timed out", err)
		}
	}
	if unlocks, _ := watch.counts(); unlocks != 1 {
		t.Errorf("Secret Service Unlock calls for 3 concurrent unlocks: got %d, want 1", unlocks)
	}
	ctl.unlock(t)
	if err := k.Unlock(t.Context()); err != nil {
		t.Errorf("Unlock of an unlocked keychain: got %v, want nil", err)
	}
}

// afterCheck is a Keychain that runs a hook once, right after the next
// Writable check passed: the store fails between the check and the write.
type afterCheck struct {
	*Keychain
	mu   sync.Mutex // guards hook
	hook func()
}

func (s *afterCheck) arm(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

func (s *afterCheck) Writable(ctx context.Context) error {
	err := s.Keychain.Writable(ctx)
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if err == nil && hook != nil {
		hook()
	}
	return err
}
