package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/ipc"
)

// checkTokenScopes refuses scopes for an app-password account: a Nextcloud
// app password is a full credential with no scopes, and handing it out for
// a request that asked for less would be a silent widening.
func checkTokenScopes(name string, ac *AccountConfig, scopes []string) error {
	if len(scopes) == 0 || ac == nil || broker.Kind(ac.Kind) != broker.KindAppPassword {
		return nil
	}
	return &ipc.Error{Code: ipc.CodeInvalidRequest, Account: name,
		Message: fmt.Sprintf("account %s signs in with a Nextcloud app password, which has no scopes: drop --scopes (it grants the whole account)", name)}
}

// scopeHint adds what to do to an invalid_scope answer of the IdP
// (https://www.rfc-editor.org/rfc/rfc6749#section-5.2: "The requested
// scope is invalid, unknown, malformed, or exceeds the scope granted by
// the resource owner"): on a refresh grant, the account was signed in
// without the scope asked for, and only a new sign-in asking for it adds
// it.
func scopeHint(name string, ac *AccountConfig, asked []string, err error) error {
	var we *ipc.Error
	if !errors.As(err, &we) || we.IdPError != "invalid_scope" || len(asked) == 0 {
		return err
	}
	want := []string{"openid", "offline_access"}
	if ac != nil && len(ac.Scopes) > 0 {
		want = append([]string(nil), ac.Scopes...)
	}
	for _, s := range asked {
		if !slices.Contains(want, s) {
			want = append(want, s)
		}
	}
	hint := *we
	hint.Message = fmt.Sprintf("account %s was signed in without the scopes %q asked for (the identity provider says invalid_scope): sign in again asking for them: ncagent login %s --scopes %q",
		name, strings.Join(asked, " "), name, strings.Join(want, " "))
	return &hint
}
