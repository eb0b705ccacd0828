package agent

import (
	"context"

	"github.com/ncagent/ncagent/internal/recovery"
	"github.com/ncagent/ncagent/ipc"
)

// runLoginOpSafe runs runLoginOp and, should the sign-in panic (a bug),
// logs it (recovery.Log: no secret), ends the sign-in with an internal
// error for everyone waiting on it, and keeps the agent serving.
func (a *Agent) runLoginOpSafe(ctx context.Context, name string, req ipc.LoginRequest, op *loginOp) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		recovery.Log(a.log, "sign-in of "+name, v)
		op.mu.Lock()
		op.result, op.err = ipc.LoginEvent{}, &ipc.Error{Code: ipc.CodeInternal, Account: name,
			Message: "the sign-in stopped on an internal error (a bug: please report it with the agent log): run ncagent login " + name + " to try again"}
		op.mu.Unlock()
		a.mu.Lock()
		if a.logins[name] == op {
			delete(a.logins, name)
		}
		a.mu.Unlock()
		op.cancel()
		select {
		case <-op.done:
		default:
			close(op.done)
		}
		a.notify()
	}()
	a.runLoginOp(ctx, name, req, op)
}
