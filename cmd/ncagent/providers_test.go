package main

import (
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ncagent/ncagent/internal/idptest"
)

// providerProfiles are the identity providers every script can sign in
// at besides $ISSUER: each a profile of the in-process server that
// reproduces a real provider's quirks (see idptest.Profile), reachable as
// $<ENV> with client id "ncagent".
var providerProfiles = []struct {
	name, env string
	opts      idptest.Options
}{
	{"nextcloud-oidc", "NC_OIDC", idptest.Options{Profile: idptest.ProfileNextcloudOIDC}},
	{"dex", "DEX", idptest.Options{Profile: idptest.ProfileDex, Subject: "CgVhbGljZRIFbG9jYWw", Username: "alice"}},
	{"hydra", "HYDRA", idptest.Options{Profile: idptest.ProfileHydra}},
	{"no-exchange", "NOEXCHANGE", idptest.Options{NoTokenExchange: true}},
}

// startProviders starts the profile servers of one script and sets their
// issuers in the script's environment.
func startProviders(tb scriptTB, e *testscript.Env, key *rsa.PrivateKey) map[string]*idptest.Server {
	out := map[string]*idptest.Server{}
	for _, p := range providerProfiles {
		opts := p.opts
		opts.Key = key
		s := idptest.New(tb, opts)
		out[p.name] = s
		e.Setenv(p.env, s.Issuer())
	}
	return out
}

// cmdUseIdP: "useidp NAME" makes the idp and introspect commands work on
// the profile server NAME (nextcloud-oidc, dex, hydra, no-exchange) and
// resets its counters.
func cmdUseIdP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: useidp NAME")
	}
	w := worldOf(ts)
	s := w.profiles[args[0]]
	if s == nil {
		ts.Fatalf("useidp: no provider %q", args[0])
	}
	w.idp = s
	s.ResetCalls()
}

// cmdProvider plays someone else at the current provider:
//
//	provider login-elsewhere       the same user signs in with the same client elsewhere
//	provider replay ACCOUNT        another program uses ACCOUNT's stored refresh token
//	provider live FILE             the access token in FILE still works at the provider
func cmdProvider(ts *testscript.TestScript, neg bool, args []string) {
	w := worldOf(ts)
	switch {
	case !neg && len(args) == 1 && args[0] == "login-elsewhere":
		tok := w.idp.Login(scriptTSTB{TB: w.tb, ts: ts}, idptest.PublicClientID)
		w.remember(tok.AccessToken, tok.RefreshToken, tok.IDToken)
	case !neg && len(args) == 2 && args[0] == "replay":
		s, err := w.kc.Get(args[1])
		if err != nil {
			ts.Fatalf("provider replay: %v", err)
		}
		w.remember(s.Reveal())
		tok, err := w.idp.Refresh(idptest.PublicClientID, s.Reveal())
		if err != nil {
			ts.Fatalf("provider replay: %v", err)
		}
		w.remember(tok.AccessToken, tok.RefreshToken, tok.IDToken)
	case len(args) == 2 && args[0] == "live":
		tok := strings.TrimSpace(ts.ReadFile(args[1]))
		w.remember(tok)
		if active := w.idp.Inspect(tok).Active; active == neg {
			ts.Fatalf("provider live: the token in %s is active: %v", args[1], active)
		}
	default:
		ts.Fatalf("usage: provider login-elsewhere | replay ACCOUNT | [!] live FILE")
	}
}

// scriptTSTB lets idptest helpers fail a running script; the embedded
// testing.TB (the parent test) only completes the interface.
type scriptTSTB struct {
	testing.TB
	ts *testscript.TestScript
}

func (s scriptTSTB) Helper()                      {}
func (s scriptTSTB) Fatal(args ...any)            { s.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (s scriptTSTB) Fatalf(f string, args ...any) { s.ts.Fatalf(f, args...) }
func (s scriptTSTB) Errorf(f string, args ...any) { s.ts.Fatalf(f, args...) }
