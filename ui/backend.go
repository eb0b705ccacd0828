package ui

import (
	"context"
	"errors"

	"github.com/ncagent/ncagent/ipc"
)

// Backend is what the tray and the setup page need from the agent.
// *agent.Agent implements it. Its methods are called from ui's goroutines,
// never from a systray callback, and may block.
type Backend interface {
	Status(ctx context.Context) (ipc.StatusResponse, error)
	Login(ctx context.Context, peer ipc.Peer, req ipc.LoginRequest, progress func(ipc.LoginEvent)) (ipc.LoginEvent, error)
	Revoke(ctx context.Context, peer ipc.Peer, req ipc.RevokeRequest) (ipc.RevokeResponse, error)
	// Subscribe returns a channel that receives a value (coalesced)
	// whenever an account's state or the account list changes, and a
	// function that ends the subscription.
	Subscribe() (<-chan struct{}, func())
}

// AutostartControl turns starting the agent at login on and off. The
// packaging layer implements it per platform (XDG autostart entry, launchd
// agent, Run key). Its methods may block briefly; the tray calls them from
// its own goroutine.
type AutostartControl interface {
	Enabled() (bool, error)
	SetEnabled(on bool) error
}

// ErrNoTray is returned, wrapped with the reason, by StartTray when no tray
// can be shown: no graphical session, or a platform or build without one.
var ErrNoTray = errors.New("ui: no tray")

// account states as ipc.AccountStatus.State carries them.
const (
	stateSignedIn   = "signed-in"
	stateSignedOut  = "signed-out"
	stateNeedsLogin = "needs-login"
	stateOffline    = "offline"
	stateSigningIn  = "signing-in" // the agent's view while a sign-in runs
)

// errorText is an error's message for a person: the wire message when the
// agent gave one.
func errorText(err error) string {
	var we *ipc.Error
	if errors.As(err, &we) && we.Message != "" {
		return we.Message
	}
	return err.Error()
}
