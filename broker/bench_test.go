package broker

import (
	"context"
	"testing"
)

// benchBroker returns a broker whose cache holds a token for the account's
// default scopes.
func benchBroker(b *testing.B) (*Broker, *fakeIdP) {
	f := newFakeIdP(b, "rt-0")
	store := newMemStore()
	br := New(Options{Store: store})
	if err := br.SetAccount(Account{Name: "work", Kind: KindOIDC, Issuer: f.URL, ClientID: "ncagent", Scopes: []string{"openid", "files"}}); err != nil {
		b.Fatal(err)
	}
	store.set("work", "rt-0")
	return br, f
}

func BenchmarkTokenCacheHit(b *testing.B) {
	br, _ := benchBroker(b)
	ctx := context.Background()
	req := TokenRequest{Account: "work", Scopes: []string{"openid", "files"}} // unsorted: sorted on the stack
	if _, err := br.Token(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Token(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenCacheHitParallel(b *testing.B) {
	br, _ := benchBroker(b)
	ctx := context.Background()
	req := TokenRequest{Account: "work", Scopes: []string{"files", "openid"}}
	if _, err := br.Token(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Token(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTokenColdRefresh measures a cache miss: one refresh grant
// against a local server (HTTP round trip, rotation, Store write).
func BenchmarkTokenColdRefresh(b *testing.B) {
	br, _ := benchBroker(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		br.get("work").mu.Lock()
		br.get("work").tokens = nil
		br.get("work").mu.Unlock()
		if _, err := br.Token(ctx, TokenRequest{Account: "work"}); err != nil {
			b.Fatal(err)
		}
	}
}
