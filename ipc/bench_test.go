//go:build unix

package ipc

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchServer runs a server whose backend returns a fixed token.
func benchServer(tb testing.TB) *testServer {
	fixed, _ := fakeToken("work", Scopes{"openid", "files"})
	b := &fakeBackend{token: func(context.Context, Peer, TokenRequest) (TokenResponse, error) { return fixed, nil }}
	return startServer(tb, b, ServerOptions{Logger: discardLogger()})
}

var benchReq = TokenRequest{Account: "work", Scopes: Scopes{"openid", "files"}, ClientHint: "bench"}

func BenchmarkTokenKeepAlive(b *testing.B) {
	ts := benchServer(b)
	c := NewClient(ts.path)
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Token(ctx, benchReq); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenNewConn(b *testing.B) {
	ts := benchServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := NewClient(ts.path)
		_, err := c.Token(ctx, benchReq)
		c.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenKeepAliveParallel16(b *testing.B) {
	ts := benchServer(b)
	c := NewClient(ts.path)
	defer c.Close()
	ctx := context.Background()
	b.SetParallelism(8) // 8 goroutines per GOMAXPROCS: 16 clients on 2 cores
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Token(ctx, benchReq); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestLatencyReport prints latency percentiles and throughput with
// keep-alive: one sequential client, then 16 concurrent clients.
// Run with NCAGENT_BENCH=1 go test -run TestLatencyReport -v ./ipc/
func TestLatencyReport(t *testing.T) {
	if os.Getenv("NCAGENT_BENCH") != "1" {
		t.Skip("set NCAGENT_BENCH=1 to measure latency")
	}
	ts := benchServer(t)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("loadavg at start: %s", strings.Join(strings.Fields(string(b))[:3], " "))
	}
	for _, clients := range []int{1, 16} {
		c := NewClient(ts.path)
		ctx := context.Background()
		const warmup, dur = 200 * time.Millisecond, 3 * time.Second
		var mu sync.Mutex // guards all
		var all []time.Duration
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 1<<16)
				for time.Since(start) < warmup+dur {
					t0 := time.Now()
					if _, err := c.Token(ctx, benchReq); err != nil {
						t.Error(err)
						return
					}
					if t0.Sub(start) >= warmup {
						local = append(local, time.Since(t0))
					}
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		c.Close()
		slices.Sort(all)
		pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
		t.Logf("%2d client(s): %d requests, %.0f req/s, p50 %v, p90 %v, p99 %v, max %v",
			clients, len(all), float64(len(all))/dur.Seconds(), pct(0.50), pct(0.90), pct(0.99), all[len(all)-1])
	}
}

// floorServer runs a plain net/http server on a Unix socket answering
// every request with the bytes benchServer's token answer has: the floor
// the ipc server is measured against.
func floorServer(tb testing.TB) string {
	fixed, _ := fakeToken("work", Scopes{"openid", "files"})
	body, _ := json.Marshal(fixed)
	path := filepath.Join(shortDir(tb), "floor.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Cache-Control"] = []string{"no-store"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})}
	go hs.Serve(ln)
	tb.Cleanup(func() { hs.Close() })
	return path
}

// BenchmarkFloorKeepAlive is BenchmarkTokenKeepAlive against floorServer.
func BenchmarkFloorKeepAlive(b *testing.B) {
	c := NewClient(floorServer(b))
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Token(ctx, benchReq); err != nil {
			b.Fatal(err)
		}
	}
}
