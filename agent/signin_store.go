package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// signInStoreCheck fails a sign-in before it starts (before any browser
// tab, device code or login page) when the store could not keep the
// secret it would bring: the user would do all the work at the provider
// for nothing. The message says how to fix it.
func (a *Agent) signInStoreCheck(ctx context.Context, account string) error {
	ws, ok := a.store.(broker.WritableStore)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := ws.Writable(ctx)
	if err == nil {
		return nil
	}
	a.log.Info("sign-in refused before it started: the secret could not be kept", "account", account, "err", err.Error())
	return &ipc.Error{Code: ipc.CodeStoreLocked, Account: account, Message: signInStoreMessage(account, err)}
}

// signInStoreMessage says why a sign-in cannot keep its secret and what to
// do.
func signInStoreMessage(account string, err error) string {
	why := storeCause(err)
	fix := "run ncagent unlock, then ncagent login " + account + " again"
	switch {
	case errors.Is(err, ErrNoKeychain):
		why = "there is no keychain here (no Secret Service on the D-Bus session bus)"
		fix = "start a Secret Service (gnome-keyring, KeePassXC), or keep secrets in an encrypted file: run ncagent unlock (it creates the file store with a passphrase you choose; or set store = \"file\" in [agent]), then ncagent login " + account + " again"
	case errors.Is(err, ErrKeychainLocked):
		why = "the keychain is locked"
		fix = "unlock it (ncagent unlock shows the prompt, or use your keyring app), then ncagent login " + account + " again"
	}
	return fmt.Sprintf("cannot sign in %s: %s, so the sign-in could not be kept: %s", account, why, fix)
}
