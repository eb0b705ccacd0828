package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// answerWait bounds how long a refresh grant already sent waits for its
	// answer. Until the answer arrives its outcome is unknown (the IdP may
	// have rotated the refresh token already), so nothing else is sent on
	// the chain meanwhile, and nobody leaving cancels it.
	answerWait = 2 * time.Minute
	// callerWait bounds how long a caller waits for the answer of a refresh
	// before it gets its timeout; the refresh itself goes on, detached.
	callerWait = 30 * time.Second
	// putBackoffMin and putBackoffMax bound the wait between retries of a
	// failed Store write of a rotated refresh token: 0.5 s doubling to 5 s.
	putBackoffMin = 500 * time.Millisecond
	putBackoffMax = 5 * time.Second
)

// errStopping refuses a refresh asked for after Stop.
var errStopping = fmt.Errorf("%w: the agent is stopping", ErrUnavailable)

// stopState is the broker's graceful stop and the timing of its chains.
type stopState struct {
	flag   atomic.Bool     // set by Stop: no refresh grant is sent any more
	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc

	// Tunables; tests shrink them. Set before first use, read-only after.
	answerWait time.Duration
	callerWait time.Duration

	mu   sync.Mutex    // guards back
	back chan struct{} // closed and replaced by StoreAvailable
}

func newStopState() *stopState {
	s := &stopState{answerWait: answerWait, callerWait: callerWait, back: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *stopState) stopping() bool { return s.flag.Load() }

// bind returns ctx cancelled also when the broker stops: for waits that
// must not hold up a stop (backoff between attempts), never for an IdP
// call already sent.
func (s *stopState) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unregister := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { unregister(); cancel() }
}

// storeBack returns a channel closed the next time StoreAvailable is
// called.
func (s *stopState) storeBack() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.back
}

// Stop makes the broker stop taking new work: from now on no refresh
// grant is sent (requests the cache cannot serve fail with an error
// wrapping ErrUnavailable), while refreshes already sent run to their end.
// Call Shutdown next to wait for them. Stop is safe to call more than once.
func (b *Broker) Stop() {
	if b.stop.flag.CompareAndSwap(false, true) {
		b.stop.cancel()
		b.log.Debug("broker stopping: no new refresh will be sent")
	}
}

// StoreAvailable tells the broker the Store may take writes again (the
// agent saw the Secret Service reappear on the bus): pending writes of
// rotated refresh tokens are retried at once instead of after their
// backoff. It does not block.
func (b *Broker) StoreAvailable() {
	for _, a := range b.snapshot() {
		a.mu.Lock()
		if a.unsaved {
			a.nextPut = time.Time{}
		}
		a.mu.Unlock()
	}
	b.stop.mu.Lock()
	close(b.stop.back)
	b.stop.back = make(chan struct{})
	b.stop.mu.Unlock()
	b.wake()
}

// Shutdown ends the broker's work for a graceful exit. It calls Stop,
// then for every account waits for the refresh already sent on its chain
// (each bounded by the refresh's own answer bound, not by ctx) so that a
// rotated refresh token is adopted, and retries a pending Store write of
// it until it succeeds or ctx ends. It returns an error naming the
// accounts whose rotated refresh token could not be stored: their next
// start needs a sign-in, since the IdP no longer accepts the stored one.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.Stop()
	accts := b.snapshot()
	errs := make([]error, len(accts))
	var wg sync.WaitGroup
	for i, a := range accts {
		wg.Go(func() { errs[i] = b.shutdownAccount(ctx, a) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b *Broker) shutdownAccount(ctx context.Context, a *account) error {
	// The chain is held by a refresh in flight at most answerWait (plus
	// its Store write); a little more covers the hand-over.
	lctx, cancel := context.WithTimeout(context.Background(), b.stop.answerWait+b.stop.callerWait)
	defer cancel()
	if err := a.lock(lctx); err != nil {
		b.log.Error("a refresh still had no answer at shutdown: if the provider rotated the refresh token, the next start needs a sign-in", "account", a.name)
		return fmt.Errorf("shutdown %q: refresh without an answer: %w", a.name, err)
	}
	defer a.unlock()
	for {
		a.mu.RLock()
		unsaved, fails := a.unsaved && a.secret != "", a.putFails
		a.mu.RUnlock()
		if !unsaved {
			return nil
		}
		back := b.stop.storeBack()
		b.flushSecret(a)
		a.mu.RLock()
		unsaved = a.unsaved
		a.mu.RUnlock()
		if !unsaved {
			b.log.Info("rotated refresh token stored at shutdown", "account", a.name)
			return nil
		}
		wait := time.NewTimer(putBackoff(fails + 1))
		select {
		case <-wait.C:
		case <-back:
			wait.Stop()
		case <-ctx.Done():
			wait.Stop()
			a.mu.RLock()
			last := a.lastErr
			a.mu.RUnlock()
			b.log.Error("the rotated refresh token could not be stored before exit: the provider no longer accepts the stored one, so the next start needs a sign-in", "account", a.name, "err", last)
			return fmt.Errorf("shutdown %q: rotated refresh token not stored: %w", a.name, ctx.Err())
		}
	}
}

// putBackoff is the wait before retrying a Store write after fails
// failures: 0.5 s doubling to at most 5 s.
func putBackoff(fails int) time.Duration {
	if fails < 1 {
		fails = 1
	}
	return min(putBackoffMin<<min(fails-1, 8), putBackoffMax)
}
