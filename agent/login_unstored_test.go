package agent

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/nctest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// putFails is the real keychain, except that it cannot take a new secret.
type putFails struct{ *Keychain }

func (putFails) Put(string, broker.Secret) error {
	return errors.New("keychain: put: the disk is full")
}

// TestLoginRevokesUnstoredAppPassword: Nextcloud issues an app password,
// the keychain cannot store it: the sign-in fails, says so, and the new
// app password is deleted at Nextcloud instead of lingering there.
func TestLoginRevokesUnstoredAppPassword(t *testing.T) {
	testutil.RequireSecretService(t)
	kc := NewKeychain("ncagent-unstored-"+strconv.FormatInt(time.Now().UnixNano(), 36), 5*time.Second)
	logs := &syncBuffer{}
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	a, err := New(Options{ConfigPath: cfgPath, Store: putFails{kc},
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OpenURL: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	sockDir := testutil.ShortDir(t)
	client := serveAgent(t, a, filepath.Join(sockDir, "agent.sock"))

	nc := nctest.New(t, nctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), loginWait)
	defer cancel()
	_, err = client.Login(ctx, ipc.LoginRequest{Account: "cloud", Method: MethodAppPassword, Server: nc.URL}, func(ev ipc.LoginEvent) {
		if ev.Type == "open_url" {
			go nc.Grant(ev.URL)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "could not be stored, so it was revoked at the server") {
		t.Errorf("login: got %v, want an error saying the new app password was revoked", err)
	}
	issued := nc.AppPasswords()
	if len(issued) != 1 {
		t.Fatalf("app passwords issued: got %d, want 1", len(issued))
	}
	if nc.Valid(issued[0]) {
		t.Error("the app password nobody stored is still valid at Nextcloud")
	}
	if strings.Contains(logs.String(), issued[0]) || (err != nil && strings.Contains(err.Error(), issued[0])) {
		t.Error("the app password appears in the log or the error")
	}
}
