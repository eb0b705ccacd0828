//go:build linux

package agent

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/ncagent/ncagent/broker"
	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
)

// BenchmarkCrashWindow measures the window in which a kill loses the grant:
// from the moment the refresh grant's answer is fully received (the last
// byte of its body read) to the moment the Store write of the rotated
// refresh token returned. The provider has already rotated by then, so a
// kill inside the window leaves only the consumed token behind; no client
// can close it, but its width is the client's.
//
// Each iteration is one real refresh at idptest through a fresh broker
// (so nothing is cached) and one real write to the Secret Service. Metrics
// are the window's p50 and p99 in microseconds; "floor" is one D-Bus round
// trip to the Secret Service (Peer.Ping) in the same run, "memory" the
// broker's own share (a Store that keeps the secret in memory).
//
//	scripts/test -run '^$' -bench CrashWindow -benchtime 200x ./agent
func BenchmarkCrashWindow(b *testing.B) {
	testutil.RequireSecretService(b)
	b.Run("floor dbus ping", func(b *testing.B) {
		conn, err := dbus.SessionBus()
		if err != nil {
			b.Fatal(err)
		}
		obj := conn.Object(ssName, ssPath)
		var d []time.Duration
		for b.Loop() {
			t := time.Now()
			if err := obj.Call("org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t))
		}
		reportWindow(b, d)
	})
	b.Run("memory", func(b *testing.B) {
		r := newWindowRig(b, nil)
		var d []time.Duration
		for b.Loop() {
			d = append(d, r.refresh(b))
		}
		reportWindow(b, d)
	})
	// Before and after in one loop, alternating, so that both see the same
	// load (the machine is shared).
	b.Run("go-keyring session per write (before) vs kept session (after)", func(b *testing.B) {
		before := newWindowRig(b, globalKeyring{})
		after := newWindowRig(b, platformKeyring(5*time.Second))
		var db, da []time.Duration
		for b.Loop() {
			db = append(db, before.refresh(b))
			da = append(da, after.refresh(b))
		}
		slices.Sort(db)
		slices.Sort(da)
		b.ReportMetric(float64(db[len(db)/2].Microseconds()), "before-p50-µs")
		b.ReportMetric(float64(db[len(db)*99/100].Microseconds()), "before-p99-µs")
		b.ReportMetric(float64(da[len(da)/2].Microseconds()), "after-p50-µs")
		b.ReportMetric(float64(da[len(da)*99/100].Microseconds()), "after-p99-µs")
		b.ReportMetric(0, "ns/op")
	})
}

// windowRig is account "work" at idptest with its refresh token in a
// Store (the real Secret Service through kr; in memory when kr is nil).
type windowRig struct {
	acct   broker.Account
	store  *windowStore
	client *http.Client
}

func newWindowRig(b *testing.B, kr keyring.Keyring) *windowRig {
	b.Helper()
	idp := idptest.New(b, idptest.Options{})
	tok := idp.Login(b, idptest.PublicClientID, "openid", "offline_access", "files")
	var store broker.Store = &benchStore{secrets: map[string]broker.Secret{}}
	if kr != nil {
		kc := NewKeychain("ncagent-bench-"+strconv.FormatInt(time.Now().UnixNano(), 36), 5*time.Second)
		kc.kr = kr
		b.Cleanup(func() { kc.Delete("work") })
		store = kc
	}
	if err := store.Put("work", broker.Secret(tok.RefreshToken)); err != nil {
		b.Fatal(err)
	}
	w := &windowClock{}
	return &windowRig{
		acct:   broker.Account{Name: "work", Kind: broker.KindOIDC, Issuer: idp.Issuer(), ClientID: idptest.PublicClientID, Scopes: []string{"files"}},
		store:  &windowStore{Store: store, w: w},
		client: &http.Client{Transport: &answerClock{base: http.DefaultTransport, w: w}},
	}
}

// refresh makes one real refresh through a fresh broker (nothing cached)
// and returns its crash window.
func (r *windowRig) refresh(b *testing.B) time.Duration {
	br := broker.New(broker.Options{Store: r.store, HTTPClient: r.client})
	if err := br.SetAccount(r.acct); err != nil {
		b.Fatal(err)
	}
	if _, err := br.Token(context.Background(), broker.TokenRequest{Account: "work"}); err != nil {
		b.Fatal(err)
	}
	return r.store.w.window()
}

// windowClock holds the last answer time and the last write time.
type windowClock struct {
	mu       sync.Mutex // guards answered, written
	answered time.Time
	written  time.Time
}

func (w *windowClock) window() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written.Sub(w.answered)
}

// answerClock notes when a token endpoint answer's body was read to its end.
type answerClock struct {
	base http.RoundTripper
	w    *windowClock
}

func (a *answerClock) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(r)
	if err == nil && r.URL.Path == "/token" {
		resp.Body = &clockedBody{ReadCloser: resp.Body, w: a.w}
	}
	return resp, err
}

type clockedBody struct {
	io.ReadCloser
	w *windowClock
}

func (c *clockedBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err == io.EOF {
		c.w.mu.Lock()
		c.w.answered = time.Now()
		c.w.mu.Unlock()
	}
	return n, err
}

// windowStore notes when a Put returned.
type windowStore struct {
	broker.Store
	w *windowClock
}

func (s *windowStore) Put(account string, secret broker.Secret) error {
	err := s.Store.Put(account, secret)
	s.w.mu.Lock()
	s.w.written = time.Now()
	s.w.mu.Unlock()
	return err
}

func reportWindow(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
