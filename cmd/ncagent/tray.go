//go:build linux || windows || (darwin && cgo)

package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/packaging"
	"github.com/ncagent/ncagent/ui"
)

func init() {
	newTray = func(ctx context.Context, a *agent.Agent, log *slog.Logger, quit func()) (trayRunner, error) {
		opts := ui.TrayOptions{Logger: log, OpenURL: agent.OpenURL, URLUsed: agent.ForgetURL}
		if env, err := packaging.NewEnv(os.Getenv); err == nil {
			opts.Autostart = trayAutostart{env}
		}
		opts.Quit = quit // ends the run verb's context: the agent stops cleanly
		t, err := ui.NewTray(ctx, a, opts)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

// trayAutostart backs the tray's Start at login item with the autostart
// verb's packaging calls.
type trayAutostart struct{ env packaging.Env }

func (t trayAutostart) Enabled() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := packaging.Status(ctx, t.env)
	return st.Enabled, err
}

func (t trayAutostart) SetEnabled(on bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	do := packaging.Disable
	if on {
		do = packaging.Enable
	}
	_, err := do(ctx, t.env, false)
	return err
}
