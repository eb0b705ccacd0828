package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Revoke signs an account out everywhere it can: it revokes the long-lived
// secret at the server, deletes it from the Store and purges every cached
// token of the account, which ends signed out.
//
//   - oidc: the refresh token is revoked by RFC 7009 at the IdP's
//     revocation_endpoint, with client authentication. Without such an
//     endpoint, RevokeResult.Note says where the user revokes consent.
//   - app-password: DELETE {server}/ocs/v2.php/core/apppassword with the
//     app password (Nextcloud Login Flow v2).
//
// A failed server call does not stop the local sign-out: the result then
// has ServerRevoked false and the reason in Note. The error is non-nil only
// for an unknown account, a context that ended before the chain was free,
// or a Store that could not delete the secret.
func (b *Broker) Revoke(ctx context.Context, name string) (RevokeResult, error) {
	a := b.get(name)
	if a == nil {
		return RevokeResult{}, unknownAccount(name)
	}
	if err := a.lock(ctx); err != nil {
		return RevokeResult{}, &AccountError{Account: name, Err: fmt.Errorf("revoke: waiting for the refresh chain: %w", err)}
	}
	defer a.unlock()
	res := RevokeResult{Account: name}
	a.mu.RLock()
	cfg, secret, loaded := a.cfg, a.secret, a.loaded
	a.mu.RUnlock()
	if !loaded || secret == "" {
		if s, err := b.store.Get(name); err == nil {
			secret = s
		}
	}
	var notes []string
	if secret == "" {
		notes = append(notes, "no stored credential to revoke at the server")
	} else {
		notes = b.revokeAtServer(ctx, cfg, secret, &res)
	}
	var delErr error
	if err := b.store.Delete(name); err != nil {
		delErr = &AccountError{Account: name, Err: fmt.Errorf("revoke: delete stored secret: %w", err)}
		notes = append(notes, "the stored secret could not be deleted")
	} else {
		// Only a secret that was there is reported deleted: a second
		// revoke must not claim it again.
		res.SecretDeleted = secret != ""
	}
	a.mu.Lock()
	res.PurgedTokens = a.purge()
	a.setSecret("")
	a.secret, a.loaded, a.unsaved = "", true, false
	a.idpErr = nil
	a.refreshExp, a.nextKeep = time.Time{}, time.Time{}
	a.singleToken, a.loggedST = false, false
	changed := a.setState(StateSignedOut, nil)
	a.lastErr = ""
	a.mu.Unlock()
	res.Note = strings.Join(notes, "; ")
	b.log.Info("account revoked", "account", name, "where", res.Where, "server_revoked", res.ServerRevoked, "purged", res.PurgedTokens)
	if changed {
		b.emit(Event{Account: name, State: StateSignedOut})
	}
	return res, delErr
}

// consentNote says where a user revokes consent when the IdP has no
// revocation endpoint.
func consentNote(cfg Account) string {
	where := "the identity provider's account page"
	if cfg.Issuer != "" {
		where += " (" + cfg.Issuer + ")"
	}
	if cfg.Server != "" {
		where += " or Nextcloud Settings → Security (" + strings.TrimSuffix(cfg.Server, "/") + "/settings/user/security)"
	} else {
		where += " or Nextcloud Settings → Security"
	}
	return "the identity provider offers no revocation endpoint: the grant stays valid until it expires; revoke consent on " + where
}

// deleteAppPassword deletes an app password at Nextcloud (Login Flow v2:
// DELETE /ocs/v2.php/core/apppassword, authenticated with it).
func (b *Broker) deleteAppPassword(ctx context.Context, cfg Account, endpoint string, password Secret) error {
	if err := CheckEndpointURL("server", endpoint); err != nil {
		return err
	}
	client, err := b.clientFor(cfg.CAPEM)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(cfg.Username, password.Reveal())
	req.Header.Set("OCS-APIRequest", "true")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var re *RedirectError
		if errors.As(err, &re) {
			return re
		}
		return fmt.Errorf("delete app password: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delete app password: HTTP %d", resp.StatusCode)
	}
	return nil
}

// revokeAtServer revokes secret, the long-lived credential of cfg, where
// it was issued (see Revoke) and records where in res. It returns notes
// for the user about what could not be done; it touches neither the
// Store nor the account's chain.
func (b *Broker) revokeAtServer(ctx context.Context, cfg Account, secret Secret, res *RevokeResult) (notes []string) {
	switch {
	case cfg.Kind == KindAppPassword:
		res.Where = "nextcloud"
		res.Endpoint = strings.TrimSuffix(cfg.Server, "/") + "/ocs/v2.php/core/apppassword"
		if err := b.deleteAppPassword(ctx, cfg, res.Endpoint, secret); err != nil {
			notes = append(notes, fmt.Sprintf("the server did not confirm: %v; delete the device in Nextcloud Settings → Security", err))
		} else {
			res.ServerRevoked = true
		}
	default:
		endpoint := cfg.Endpoints.Revocation
		if endpoint == "" {
			md, err := b.Discover(ctx, cfg)
			if err != nil {
				notes = append(notes, fmt.Sprintf("could not find the revocation endpoint: %v", err))
			}
			endpoint = md.RevocationEndpoint
		}
		if endpoint == "" {
			notes = append(notes, consentNote(cfg))
			break
		}
		res.Where, res.Endpoint = "idp", endpoint
		// https://www.rfc-editor.org/rfc/rfc7009#section-2.1: token
		// REQUIRED, token_type_hint OPTIONAL, client authentication as at
		// the token endpoint. Revoking the refresh token: "If the token
		// passed to the request is a refresh token and the authorization
		// server supports the revocation of access tokens, then the
		// authorization server SHOULD also invalidate all access tokens
		// based on the same authorization grant."
		err := b.withRetry(ctx, "revoke", func() error {
			form := url.Values{"token": {secret.Reveal()}, "token_type_hint": {"refresh_token"}}
			_, err := b.postForm(ctx, "revoke", cfg, endpoint, form)
			return err
		})
		if err != nil {
			notes = append(notes, fmt.Sprintf("the identity provider did not confirm: %v; revoke access on the identity provider's account page", err))
		} else {
			// "The authorization server responds with HTTP status code 200
			// if the token has been revoked successfully or if the client
			// submitted an invalid token." (section 2.2)
			res.ServerRevoked = true
		}
	}
	return notes
}

// RevokeIssued revokes at the server a credential a sign-in just obtained
// for cfg but could not store (see Revoke for where and how): an app
// password or refresh token that nobody keeps must not stay valid. It
// touches neither the Store nor any account's chain. The error says what
// could not be revoked, and where the user revokes it by hand.
func (b *Broker) RevokeIssued(ctx context.Context, cfg Account, secret Secret) error {
	var res RevokeResult
	notes := b.revokeAtServer(ctx, cfg, secret, &res)
	if !res.ServerRevoked {
		return fmt.Errorf("revoke the new credential: %s", strings.Join(notes, "; "))
	}
	return nil
}
