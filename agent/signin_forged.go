package agent

import (
	"fmt"
	"net/http"
	"net/url"
)

// maxForgedCallbacks is how many callbacks without this sign-in's state
// the loopback listener ignores before it gives up. Any local process
// (found by port in /proc/net/tcp) or a web page scanning ports can send
// GET /callback; ending the sign-in on the first would let it abort every
// sign-in, waiting forever would let it keep the listener busy.
const maxForgedCallbacks = 20

// refuseForged answers a callback that does not carry this sign-in's state
// with 400 and reports true; the listener keeps waiting for the real one.
// After maxForgedCallbacks of them the sign-in ends with ErrSignInState.
// A callback with the right state gets false: it decides the outcome.
//
// https://www.rfc-editor.org/rfc/rfc6749#section-10.12: the state value
// binds the authorization response to the user-agent that started the
// request; a response without it is not this sign-in's.
func (f *browserFlow) refuseForged(w http.ResponseWriter, q url.Values) bool {
	if got := q.Get("state"); got != "" && equalSecret(got, f.state) {
		return false
	}
	n := f.forged.Add(1)
	writePage(w, http.StatusBadRequest, page{
		Title:   "Sign-in refused",
		Message: "This page does not belong to the sign-in in progress, so it was ignored.",
		Next:    "Finish the sign-in in the browser tab ncagent opened, or run the login again.",
		Account: f.r.Account,
	})
	if n == maxForgedCallbacks+1 && f.claimed.CompareAndSwap(false, true) {
		f.done <- browserOutcome{err: fmt.Errorf("browser sign-in: stopped after %d callbacks without this sign-in's state reached %s (another program on this machine may be interfering): run the login again: %w",
			maxForgedCallbacks+1, f.cfg.RedirectURL, ErrSignInState)}
	}
	return true
}
