// Package recovery logs a recovered panic of a goroutine that runs
// outside net/http (which recovers its handlers itself), so that one bug
// in a sign-in or a background job ends that job, not the agent.
//
// Security: a panic value may be built from anything the goroutine held,
// a token included, so only runtime errors (index out of range, nil
// dereference: texts the runtime writes) are logged as text; any other
// value is logged by its type alone. The stack holds function names,
// files, lines and argument words (addresses and integers), never the
// bytes a string or slice points to.
package recovery

import (
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
)

// Log logs v, a value recover returned in the goroutine doing what, at
// error level with the goroutine's stack. It is a no-op for a nil v.
func Log(log *slog.Logger, what string, v any) {
	if v == nil {
		return
	}
	log.Error("recovered from a panic (a bug: please report it with this log)", "in", what,
		"panic", Describe(v), "stack", string(debug.Stack()))
}

// Describe is the loggable form of a panic value: the runtime's own text
// for a runtime.Error, the value's type otherwise.
func Describe(v any) string {
	if re, ok := v.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("a value of type %T", v)
}
