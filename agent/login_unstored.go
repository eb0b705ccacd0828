package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/ncagent/ncagent/broker"
)

// revokeUnstored revokes at the server a credential a sign-in obtained
// but could not store (storeErr): nobody keeps it, so it must not stay
// valid there (an app password would linger as a device in Nextcloud). It
// returns storeErr, saying whether the revocation worked.
func (a *Agent) revokeUnstored(ctx context.Context, acct broker.Account, secret broker.Secret, storeErr error) error {
	// Its own time: the store may have failed by using up ctx's.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := a.broker.RevokeIssued(ctx, acct, secret); err != nil {
		a.log.Warn("could not revoke the credential that could not be stored", "account", acct.Name, "err", err)
		return fmt.Errorf("%w (the new credential could not be stored, nor revoked at the server: %v)", storeErr, err)
	}
	a.log.Info("revoked the credential that could not be stored", "account", acct.Name)
	return fmt.Errorf("%w (the new credential could not be stored, so it was revoked at the server)", storeErr)
}
