package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/untrusted"
)

// signedIn hands the integration's sign-in over the way the agent does:
// discovery first (the sign-in made it), then SignedIn with the code
// exchange's access token. Scopes are the ones asked for, since the
// Nextcloud oidc app's token response carries none.
func (it *integration) signedIn(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	a := it.b.get("work")
	if _, err := it.b.Discover(ctx, a.cfg); err != nil {
		t.Fatal(err)
	}
	scopes := grantScopes
	if it.login.Scope != "" {
		scopes = strings.Fields(it.login.Scope)
	}
	initial := &Token{AccessToken: Secret(it.login.AccessToken), Scopes: scopes,
		Expiry: time.Now().Add(time.Duration(it.login.ExpiresIn) * time.Second)}
	if err := it.b.SignedIn(ctx, "work", Secret(it.login.RefreshToken), initial, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// forceRefresh refreshes the chain as the keep-alive does.
func (it *integration) forceRefresh(t *testing.T) {
	t.Helper()
	a := it.b.get("work")
	a.mu.Lock()
	a.nextKeep = time.Now().Add(-time.Second) // due
	a.mu.Unlock()
	before := it.idp.Calls("refresh_token")
	if _, err := it.b.refreshToken(context.Background(), a, a.cfg.Audience, a.defScopes, 0, true); err != nil {
		t.Fatalf("forced refresh: %v", err)
	}
	if it.idp.Calls("refresh_token") != before+1 {
		t.Fatal("forced refresh: no refresh reached the provider")
	}
}

// TestNextcloudOIDCServesOnlyLiveTokens: sign in, ask for five scope
// sets again and again with refreshes in between, and ask the provider
// after every answer whether the token handed out still works.
func TestNextcloudOIDCServesOnlyLiveTokens(t *testing.T) {
	it := newIntegration(t, idptest.Options{Profile: idptest.ProfileNextcloudOIDC}, idptest.PublicClientID, nil)
	it.signedIn(t)
	ctx := context.Background()
	first, err := it.b.Token(ctx, TokenRequest{Account: "work"})
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken.Reveal() != it.login.AccessToken || it.idp.Calls("refresh_token") != 0 {
		t.Errorf("the first request made %d refreshes instead of being served the sign-in's token", it.idp.Calls("refresh_token"))
	}
	sets := [][]string{nil, {"files"}, {"openid", "files"}, {"calendar"}, {"contacts", "files"}}
	served, dead := 0, 0
	for round := range sets {
		for _, sc := range sets[:round+1] {
			tok, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc})
			if err != nil {
				t.Fatalf("round %d scopes %v: %v", round, sc, err)
			}
			served++
			if !it.idp.Inspect(tok.AccessToken.Reveal()).Active {
				dead++
			}
			if m := missingScopes(sortedScopes(sc), tok.Scopes); len(m) > 0 {
				t.Errorf("scopes %v: the token reports %v, lacking %v", sc, tok.Scopes, m)
			}
		}
		it.forceRefresh(t)
	}
	if dead != 0 {
		t.Errorf("served %d dead tokens out of %d, want 0", dead, served)
	}
	if st, _ := it.b.AccountStatus("work"); !st.SingleToken || len(st.Tokens) != 1 {
		t.Errorf("status: single %v with %d cached tokens, want one token per account", st.SingleToken, len(st.Tokens))
	}
	_, err = it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"talk"}})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "lacks scope talk") || !strings.Contains(err.Error(), "ncagent login work --scopes") {
		t.Errorf("a scope outside the grant: got %v, want a refusal naming it and the login", err)
	}
}

func TestTokensPerGrantConfig(t *testing.T) {
	it := newIntegration(t, idptest.Options{IgnoreScopeOnRefresh: true}, idptest.PublicClientID, nil)
	a := it.b.get("work")
	cfg := a.cfg
	cfg.TokensPerGrant = TokensPerGrantOne
	if err := it.b.SetAccount(cfg); err != nil {
		t.Fatal(err)
	}
	// IgnoreScopeOnRefresh answers with the scope, so the broker can tell
	// what the token carries; every refresh kills the previous token.
	ctx := context.Background()
	for _, sc := range [][]string{{"files"}, {"calendar"}, {"files"}} {
		tok, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: sc})
		if err != nil {
			t.Fatal(err)
		}
		if !it.idp.Inspect(tok.AccessToken.Reveal()).Active {
			t.Errorf("scopes %v: served a dead token", sc)
		}
		it.forceRefresh(t)
	}
	if got := it.idp.Calls("refresh_token"); got != 4 {
		t.Errorf("got %d refreshes, want 4 (one, then one per forced refresh)", got)
	}
}

// TestDeadRefreshTokenNeedsLogin: providers that say invalid_request for
// a refresh token they no longer honour.
func TestDeadRefreshTokenNeedsLogin(t *testing.T) {
	tests := []struct {
		name    string
		profile idptest.Profile
		kill    func(it *integration, t *testing.T)
	}{
		// Dex keeps one refresh token per user and client: a sign-in
		// elsewhere ends this chain.
		{"dex", idptest.ProfileDex, func(it *integration, t *testing.T) { it.idp.Login(t, idptest.PublicClientID) }},
		// Someone else used the refresh token on the oidc app.
		{"nextcloud-oidc", idptest.ProfileNextcloudOIDC, func(it *integration, t *testing.T) {
			if _, err := it.idp.Refresh(idptest.PublicClientID, it.login.RefreshToken); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := newIntegration(t, idptest.Options{Profile: tt.profile}, idptest.PublicClientID, nil)
			tt.kill(it, t)
			it.idp.ResetCalls()
			_, err := it.b.Token(context.Background(), TokenRequest{Account: "work"})
			if !errors.Is(err, ErrNeedsLogin) {
				t.Fatalf("got %v, want needs-login", err)
			}
			st, _ := it.b.AccountStatus("work")
			if st.State != StateNeedsLogin || !it.events.has(StateNeedsLogin) {
				t.Errorf("state %q, needs-login event %v; want needs-login with an event", st.State, it.events.has(StateNeedsLogin))
			}
			a := it.b.get("work")
			a.mu.RLock()
			keep := a.nextKeep
			a.mu.RUnlock()
			if !keep.IsZero() {
				t.Errorf("keep-alive still scheduled at %v", keep)
			}
			if _, err := it.b.Token(context.Background(), TokenRequest{Account: "work"}); !errors.Is(err, ErrNeedsLogin) {
				t.Errorf("second request: got %v, want needs-login", err)
			}
			if got := it.idp.Calls("refresh_token"); got != 1 {
				t.Errorf("got %d refresh calls, want 1", got)
			}
		})
	}
}

// TestMinValidNearAndBeyondLifetime: a burst of requests whose min_valid
// is a second under the token lifetime makes one refresh; a min_valid
// beyond it is refused, once refreshed, without further refreshes.
func TestMinValidNearAndBeyondLifetime(t *testing.T) {
	const lifetime = 10 * time.Minute
	it := newIntegration(t, idptest.Options{AccessTokenLifespan: lifetime}, idptest.PublicClientID, nil)
	// The broker's clock, moved on or stopped below (no keep-alive runs:
	// nothing else reads it yet).
	var skew atomic.Int64
	var stopped atomic.Pointer[time.Time]
	it.b.now = func() time.Time {
		if t := stopped.Load(); t != nil {
			return *t
		}
		return time.Now().Add(time.Duration(skew.Load()))
	}
	ctx := context.Background()
	// fosite rounds a token's expiry to the second and sends expires_in
	// as the whole seconds left (handler/oauth2/flow_refresh.go,
	// helper.go getExpiresIn), as Hydra does: a 10m lifetime comes as 600
	// or as 599, token by token. A second under the lifetime is the
	// tightest min_valid every fresh token meets.
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work"}); err != nil {
		t.Fatal(err)
	}
	st, _ := it.b.AccountStatus("work")
	if issued := st.Tokens[0].Expiry.Sub(st.LastRefresh); issued < lifetime-time.Second || issued > lifetime {
		t.Fatalf("issued lifetime %v, want about %v", issued, lifetime)
	}
	minValid := lifetime - time.Second
	// Past the burst window of that refresh, the cached token is measured
	// from each request's arrival and no longer meets minValid: the burst
	// needs one refresh, whose token serves every caller.
	skew.Store(int64(burstWindow + 10*time.Millisecond))
	it.idp.ResetCalls()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := it.b.Token(ctx, TokenRequest{Account: "work", MinValid: minValid})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("burst: %v", err)
		}
	}
	if got := it.idp.Calls("refresh_token"); got != 1 {
		t.Errorf("burst of 40: got %d refreshes, want 1", got)
	}
	// Half a burst window after that refresh, a request for all of the
	// fresh token's lifetime is served by it: it is measured from the
	// refresh, and exactly min_valid left meets min_valid.
	st, _ = it.b.AccountStatus("work")
	fresh := st.Tokens[0].Expiry.Sub(st.LastRefresh)
	later := st.LastRefresh.Add(burstWindow / 2)
	stopped.Store(&later)
	it.idp.ResetCalls()
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work", MinValid: fresh}); err != nil {
		t.Fatalf("min_valid %v right after the refresh: %v", fresh, err)
	}
	if got := it.idp.Calls("refresh_token"); got != 0 {
		t.Errorf("min_valid %v right after the refresh: got %d refreshes, want 0", fresh, got)
	}
	stopped.Store(nil)
	it.idp.ResetCalls()
	for range 3 {
		_, err := it.b.Token(ctx, TokenRequest{Account: "work", MinValid: time.Hour})
		if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "min_valid 1h exceeds the provider's token lifetime of 10m") &&
			!strings.Contains(err.Error(), "min_valid 1h exceeds the provider's token lifetime of 9m59s") {
			t.Fatalf("min_valid 1h: got %v, want the lifetime error", err)
		}
	}
	if got := it.idp.Calls("refresh_token"); got != 0 {
		t.Errorf("min_valid 1h: got %d refreshes, want 0", got)
	}
}

// TestScopeOutsideGrantRefused: Hydra ignores scope on refresh; a request
// for a scope the one token lacks is refused, not answered with it.
func TestScopeOutsideGrantRefused(t *testing.T) {
	it := newIntegration(t, idptest.Options{Profile: idptest.ProfileHydra}, idptest.PublicClientID, nil)
	ctx := context.Background()
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"files"}}); err != nil {
		t.Fatal(err)
	}
	_, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"talk"}})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "talk") {
		t.Fatalf("got %v, want a refusal naming scope talk", err)
	}
	if _, err := it.b.Token(ctx, TokenRequest{Account: "work", Scopes: []string{"calendar", "files"}}); err != nil {
		t.Errorf("scopes within the grant: %v", err)
	}
}

func TestExchangeProviders(t *testing.T) {
	ctx := context.Background()
	t.Run("dex needs connector_id", func(t *testing.T) {
		it := newIntegration(t, idptest.Options{Profile: idptest.ProfileDex}, idptest.ConfidentialClientID, nil)
		subject := Secret(it.login.AccessToken)
		_, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: subject})
		var ie *IdPError
		if !errors.As(err, &ie) || ie.Code != "invalid_request" || ie.Description != "Requested connector does not exist." {
			t.Fatalf("without exchange_params: got %v, want Dex's invalid_request", err)
		}
		cfg := it.b.get("work").cfg
		cfg.ExchangeParams = map[string]string{"connector_id": "local", "subject_token": "ignored"}
		if err := it.b.SetAccount(cfg); err == nil {
			t.Fatal("exchange_params may set subject_token")
		}
		cfg.ExchangeParams = map[string]string{"connector_id": "local"}
		if err := it.b.SetAccount(cfg); err != nil {
			t.Fatal(err)
		}
		got, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: subject})
		if err != nil {
			t.Fatalf("with connector_id: %v", err)
		}
		if !it.idp.Inspect(got.AccessToken.Reveal()).Active {
			t.Error("the exchanged token is not active")
		}
	})
	for _, opts := range []idptest.Options{{Profile: idptest.ProfileHydra}, {NoTokenExchange: true}, {Profile: idptest.ProfileNextcloudOIDC}} {
		t.Run("no exchange "+string(opts.Profile), func(t *testing.T) {
			it := newIntegration(t, opts, idptest.PublicClientID, nil)
			_, err := it.b.Exchange(ctx, ExchangeRequest{Account: "work", SubjectToken: Secret(it.login.AccessToken)})
			if err == nil || !strings.Contains(err.Error(), "does not offer token exchange") {
				t.Fatalf("got %v, want the provider does not offer token exchange", err)
			}
			if got := it.idp.Calls(idptest.GrantTypeTokenExchange); got != 0 {
				t.Errorf("got %d exchange requests, want 0", got)
			}
		})
	}
}

func TestProviderErrorTextNotCutMidWord(t *testing.T) {
	// Hydra's (fosite's) invalid_request with a hint runs long.
	desc := "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. " +
		"Make sure that the various parameters are correct, be aware of case sensitivity and trim your parameters. " +
		"Make sure that the client you are using has exactly whitelisted the redirect_uri you specified. " + strings.Repeat("Additional hint words follow here. ", 30)
	got := untrusted.Text(desc, 1000)
	if !strings.HasSuffix(got, "…") {
		t.Fatalf("got %q, want a cut", got)
	}
	body := strings.TrimSuffix(got, "…")
	if !strings.HasPrefix(desc, body) || (len(body) < len(desc) && desc[len(body)] != ' ' && desc[len(body)-1] != '.') {
		t.Errorf("cut mid-word: ...%q", body[len(body)-20:])
	}
	if short := "Requested connector does not exist."; untrusted.Text(short, 1000) != short {
		t.Errorf("a short text was changed")
	}
}

func TestDeadRefreshTokenWords(t *testing.T) {
	tests := []struct {
		code, desc string
		want       bool
	}{
		{"invalid_grant", "", true},
		{"invalid_request", idptest.DexDeadRefresh, true},
		{"invalid_request", "Refresh token expired.", true},
		{"invalid_request", "Could not find access token for code or refresh_token.", true}, // the oidc app before 2.0.9
		{"invalid_request", "clientID ncagent refresh token (ID abc) is invalid or has already been claimed by another client.", true},
		{"invalid_request", "No refresh token is found in request.", false}, // a client bug, not a dead token
		{"invalid_request", `Requested scopes contain unauthorized scope(s): ["talk"].`, false},
		{"invalid_request", "The request is missing a required parameter.", false},
		{"invalid_client", "Refresh token is invalid", false},
	}
	for _, tt := range tests {
		if got := deadRefreshToken(&IdPError{Code: tt.code, Description: tt.desc}); got != tt.want {
			t.Errorf("%s %q: got %v, want %v", tt.code, tt.desc, got, tt.want)
		}
	}
}
