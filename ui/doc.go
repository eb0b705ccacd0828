// Package ui is ncagent's user interface: the tray icon with its menu, and
// the local setup page that adds an account from the browser.
//
// ui drives the agent only through Backend, and it never blocks the agent:
// the agent's methods are called from ui's own goroutines, and every
// systray call happens off the agent's paths. Without a graphical session
// (no session bus or no display on Linux) StartTray returns an error
// wrapping ErrNoTray and starts nothing; the agent then runs headless.
package ui
