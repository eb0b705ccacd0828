//go:build !(linux || freebsd || openbsd || netbsd || dragonfly)

package agent

import (
	"context"
	"time"

	"github.com/zalando/go-keyring"
)

// platformKeyring returns the keyring provider of NewKeychain: go-keyring's
// platform keychain.
func platformKeyring(time.Duration) keyring.Keyring { return globalKeyring{} }

// watchKeyring has nothing to watch here: there is no Secret Service.
func watchKeyring(context.Context, keyring.Keyring, func()) {}
