package ui

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// TestTrayDemo shows the tray with three accounts for a while, for the
// screenshot in docs/tray-menu.png (taken under Xvfb with xfce4-panel).
// It runs only with NCAGENT_TRAY_DEMO set to a duration, like 20s.
func TestTrayDemo(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("NCAGENT_TRAY_DEMO"))
	if err != nil {
		t.Skip("set NCAGENT_TRAY_DEMO=20s to show a demo tray (for the screenshot)")
	}
	needBus(t)
	now := time.Now()
	b := newFakeBackend(
		ipc.AccountStatus{Name: "work", Kind: "oidc", State: stateSignedIn, Server: "https://cloud.example.com", User: "alice",
			Tokens: []ipc.CachedToken{{ExpiresAt: now.Add(4*time.Minute + 30*time.Second)}}},
		ipc.AccountStatus{Name: "home", Kind: "app-password", State: stateNeedsLogin, Server: "https://nc.example.org", User: "alice",
			LastError: "idp_error: invalid_grant"},
	)
	stop, err := StartTray(context.Background(), b, TrayOptions{
		OpenURL:   func(string) error { return nil },
		Autostart: &fakeAutostart{on: true},
		Quit:      func() {},
	})
	if err != nil {
		t.Fatalf("StartTray: %v", err)
	}
	defer stop()
	time.Sleep(d)
}
