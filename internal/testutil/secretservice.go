package testutil

import (
	"os"
	"testing"
)

// RequireSecretService skips t unless the real Secret Service is there:
// scripts/test runs the tests under dbus-run-session with an unlocked
// gnome-keyring (scripts/test-session) and sets
// NCAGENT_TEST_SECRET_SERVICE=1 to say so.
func RequireSecretService(t testing.TB) {
	t.Helper()
	if os.Getenv("NCAGENT_TEST_SECRET_SERVICE") != "1" {
		t.Skip("needs the real Secret Service: run scripts/test (it starts gnome-keyring under dbus-run-session), or set NCAGENT_TEST_SECRET_SERVICE=1 inside an unlocked desktop session")
	}
}
