package agent

// Harden keeps the secrets in this process's memory from other processes,
// as ssh-agent does: no core dump (RLIMIT_CORE 0) on every Unix, and on
// Linux not dumpable (prctl PR_SET_DUMPABLE 0), so that processes of the
// same user cannot ptrace it or read /proc/<pid>/mem, environ and the
// like. Call it first thing in the agent's main. It returns the first
// error, after trying every step; Windows has no equivalent and returns
// nil.
//
// It does not defend against root, or against the user's own processes
// on macOS, which attach through the debugger entitlements instead.
func Harden() error { return harden() }
