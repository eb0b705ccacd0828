package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/ipc"
)

// TestExecSessions: the agent opens a proxy session for a signed-in
// account, lists it, and forgets it when the holder's connection closes;
// an unknown or signed-out account fails before any session exists.
func TestExecSessions(t *testing.T) {
	e := startE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.client.OpenSession(ctx, ipc.SessionRequest{Account: "nosuch"})
	if we, ok := errors.AsType[*ipc.Error](err); !ok || we.Code != ipc.CodeUnknownAccount {
		t.Errorf("unknown account: got %v, want unknown_account", err)
	}
	s, err := e.client.OpenSession(ctx, ipc.SessionRequest{Account: "work", Scopes: ipc.Scopes{"files"}, Command: "mcp-server --stdio"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Host, "http://127.0.0.1:") || len(s.Password) != 43 || s.Account != "work" {
		t.Errorf("session: host %q, password of %d chars, account %q", s.Host, len(s.Password), s.Account)
	}
	st, err := e.client.Status(ctx)
	list := st.ExecSessions
	if err != nil || len(list) != 1 || list[0].Command != "mcp-server --stdio" || list[0].PID == 0 {
		t.Errorf("Sessions: got %+v, %v", list, err)
	}
	e.secrets = append(e.secrets, s.Password)
	s.Close()
	deadline := time.Now().Add(time.Second)
	for {
		st, err = e.client.Status(ctx)
		if list = st.ExecSessions; err == nil && len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still listed a second after Close: %+v, %v", list, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.client.Revoke(ctx, ipc.RevokeRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.OpenSession(ctx, ipc.SessionRequest{Account: "work"})
	if we, ok := errors.AsType[*ipc.Error](err); !ok || we.Code != ipc.CodeNeedsLogin {
		t.Errorf("signed-out account: got %v, want needs_login", err)
	}
}
