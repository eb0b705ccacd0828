package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/ncagent/ncagent/internal/recovery"
)

// errPanicked is what a caller waiting on a background goroutine of the
// chain gets when that goroutine panicked: an internal fault, never an
// IdP answer, so nothing is concluded about the refresh token.
var errPanicked = fmt.Errorf("internal error: a background step of the refresh chain failed (logged with its stack)")

// The broker's own goroutines run outside net/http, whose per-request
// recover does not reach them: a panic there would take the whole agent,
// and with it every account's chain. Each recovers through
// internal/recovery, which logs the stack but never the panic's value
// (it may hold a secret). Locks are released by the defers that hold
// them, so a recovered chain stays usable.

// runDueGuarded is runDue that survives a panic: it logs it and schedules
// the next round after keepAliveRetry.
func (b *Broker) runDueGuarded(ctx context.Context) (next time.Time) {
	defer func() {
		if v := recover(); v != nil {
			recovery.Log(b.log, "keep-alive", v)
			next = b.now().Add(keepAliveRetry)
		}
	}()
	return b.runDue(ctx)
}

// guard recovers and logs a panic of the goroutine that defers it.
func (b *Broker) guard(what string) {
	if v := recover(); v != nil {
		recovery.Log(b.log, what, v)
	}
}
