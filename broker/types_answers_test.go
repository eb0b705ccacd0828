package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTokenAnswersMadeOnce: a cached token's Authorization and Scope are
// what they would be made on each call, and no way of printing the token
// shows the Authorization made once.
func TestTokenAnswersMadeOnce(t *testing.T) {
	plain := Token{Account: "work", TokenType: "Bearer", AccessToken: "at-secret-value", Scopes: []string{"files", "openid"},
		Expiry: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	made := plain.withAnswers()
	if made.Authorization() != "Bearer at-secret-value" || made.Authorization() != plain.Authorization() {
		t.Errorf("Authorization: got %q made once, %q made per call", made.Authorization(), plain.Authorization())
	}
	if made.Scope() != "files openid" || made.Scope() != plain.Scope() {
		t.Errorf("Scope: got %q made once, %q made per call", made.Scope(), plain.Scope())
	}
	if (Token{}).withAnswers().Scope() != "" || (Token{Scopes: []string{"a"}}).Scope() != "a" {
		t.Errorf("Scope of no scopes and one scope: got %q, %q", (Token{}).withAnswers().Scope(), (Token{Scopes: []string{"a"}}).Scope())
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, made); strings.Contains(out, "at-secret-value") {
			t.Errorf("Sprintf(%q) of a cached token: %s, holds the secret", verb, out)
		}
	}
}
