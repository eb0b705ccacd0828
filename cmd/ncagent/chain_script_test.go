package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdChain drives and checks the refresh chain of the script's world:
//
//	chain answer-delay DURATION  refresh grants are answered DURATION late,
//	                             after the provider rotated (0: on time)
//	chain fail-token STATUS      every token request is answered STATUS
//	                             (0: served again)
//	chain alive ACCOUNT          the refresh token in the keychain is one the
//	                             provider accepts: the grant survived
//	chain sent N                 wait (at most 10s) until the provider has
//	                             received N refresh grants in all
func cmdChain(ts *testscript.TestScript, neg bool, args []string) {
	w := worldOf(ts)
	switch {
	case !neg && len(args) == 2 && args[0] == "answer-delay":
		d, err := time.ParseDuration(args[1])
		if err != nil {
			ts.Fatalf("chain answer-delay: %v", err)
		}
		w.idp.SetAnswerDelay(d)
	case !neg && len(args) == 2 && args[0] == "fail-token":
		status, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("chain fail-token: %v", err)
		}
		if status == 0 {
			w.idp.Fault(nil)
			return
		}
		w.idp.Fault(func(rw http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/token" {
				return false
			}
			http.Error(rw, `{"error":"temporarily_unavailable"}`, status)
			return true
		})
	case len(args) == 2 && args[0] == "alive":
		s, err := w.kc.Get(args[1])
		if err != nil {
			ts.Fatalf("chain alive: keychain get %s: %v", args[1], err)
		}
		w.remember(s.Reveal())
		if alive := w.idp.RefreshTokenActive(s.Reveal()); alive == neg {
			ts.Fatalf("chain alive %s: got alive=%v, want %v", args[1], alive, !neg)
		}
	case !neg && len(args) == 2 && args[0] == "sent":
		n, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("chain sent: %v", err)
		}
		for deadline := time.Now().Add(10 * time.Second); w.idp.Calls("refresh_token") < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				ts.Fatalf("chain sent: %d refresh grants after 10s, want %d", w.idp.Calls("refresh_token"), n)
			}
		}
	default:
		ts.Fatalf("usage: chain answer-delay DURATION | fail-token STATUS | alive ACCOUNT | sent N")
	}
}
