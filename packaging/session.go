package packaging

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SessionAction is what Session decided.
type SessionAction string

// Session outcomes.
const (
	// SessionRunHere: ncagent.socket is not active, so no other agent owns
	// the socket; the caller must run the agent in this process.
	SessionRunHere SessionAction = "run-here"
	// SessionStarted: the service was not running and was started with the
	// session's display.
	SessionStarted SessionAction = "started"
	// SessionRestarted: the service ran without this session's display and
	// was restarted so it shows the tray. The socket stayed open.
	SessionRestarted SessionAction = "restarted"
	// SessionAlready: the service already runs with this session's display.
	SessionAlready SessionAction = "already"
)

// SessionResult is the outcome of Session.
type SessionResult struct {
	Action SessionAction `json:"action"`
	Detail string        `json:"detail"`
}

// displayVars are the variables the tray needs, compared between the
// session and the running agent.
var displayVars = []string{"DISPLAY", "WAYLAND_DISPLAY"}

// sessionVars are imported into the systemd user manager; what
// dbus-update-activation-environment --systemd would import for the tray.
var sessionVars = []string{"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE", "DBUS_SESSION_BUS_ADDRESS"}

// Session is what the desktop entries run at login (`ncagent autostart
// session`). It keeps exactly one agent on the socket:
//
//   - when ncagent.socket is active in the systemd user manager, it imports
//     the session's display variables into the manager and starts
//     ncagent.service, or restarts it when the running agent's DISPLAY and
//     WAYLAND_DISPLAY (read from /proc/<pid>/environ) differ from the
//     session's, so the one agent shows its tray; it never listens itself;
//   - otherwise it returns SessionRunHere and the caller runs the agent.
//
// It reads only the display variables of the agent's environment.
func Session(ctx context.Context, env Env) (SessionResult, error) {
	if env.Runner == nil {
		return SessionResult{}, ErrUnsupported
	}
	if env.GOOS != "linux" {
		return SessionResult{Action: SessionRunHere, Detail: "no socket activation on " + env.GOOS}, nil
	}
	if _, err := env.Runner.LookPath("systemctl"); err != nil {
		return SessionResult{Action: SessionRunHere, Detail: "systemctl not found"}, nil
	}
	if _, err := env.Runner.Run(ctx, "systemctl", "--user", "is-active", "--quiet", SocketUnit); err != nil {
		return SessionResult{Action: SessionRunHere, Detail: SocketUnit + " is not active"}, nil
	}
	var set []string
	for _, k := range sessionVars {
		if env.getenv(k) != "" {
			set = append(set, k)
		}
	}
	if len(set) > 0 {
		// import-environment takes the values from its own environment,
		// which is this session's.
		if _, err := env.Runner.Run(ctx, "systemctl", append([]string{"--user", "import-environment"}, set...)...); err != nil {
			return SessionResult{}, err
		}
	}
	pid := query(ctx, env, "show", "--property=MainPID", "--value", ServiceUnit)
	if pid == "" || pid == "0" {
		if _, err := env.Runner.Run(ctx, "systemctl", "--user", "start", ServiceUnit); err != nil {
			return SessionResult{}, err
		}
		return SessionResult{Action: SessionStarted, Detail: "started " + ServiceUnit + " with this session's display"}, nil
	}
	if env.getenv("DISPLAY") == "" && env.getenv("WAYLAND_DISPLAY") == "" {
		return SessionResult{Action: SessionAlready, Detail: ServiceUnit + " is running; this session has no display to hand over"}, nil
	}
	if n, err := strconv.Atoi(pid); err == nil && n > 0 {
		if agentEnv, ok := procDisplay(env, n); ok && sameDisplay(env, agentEnv) {
			return SessionResult{Action: SessionAlready, Detail: ServiceUnit + " already runs with this session's display"}, nil
		}
	}
	if _, err := env.Runner.Run(ctx, "systemctl", "--user", "restart", ServiceUnit); err != nil {
		return SessionResult{}, err
	}
	return SessionResult{Action: SessionRestarted, Detail: "restarted " + ServiceUnit + " so it shows its tray in this session"}, nil
}

// procDisplay reads the display variables of process pid.
func procDisplay(env Env, pid int) (map[string]string, bool) {
	dir := env.ProcDir
	if dir == "" {
		dir = "/proc"
	}
	b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(pid), "environ"))
	if err != nil {
		return nil, false
	}
	vars := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		for _, want := range displayVars {
			if k == want {
				vars[k] = v
			}
		}
	}
	return vars, true
}

func sameDisplay(env Env, agent map[string]string) bool {
	for _, k := range displayVars {
		if env.getenv(k) != agent[k] {
			return false
		}
	}
	return true
}
