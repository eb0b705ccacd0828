//go:build unix

package ipc

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// TestLatencyReport compares the ipc server (a backend answering a fixed
// token) with floorServer, interleaved so that all sides see the same
// machine load: one client in blocks of 20 requests, then 16 concurrent
// clients in rounds of 500 ms; each side with its own keep-alive Client.
// The server runs twice: logging its info record per token to a file, as
// the agent does, and with no log, to show what the record costs.
// Run with NCAGENT_BENCH=1 go test -run TestLatencyReport -v ./ipc/
func TestLatencyReport(t *testing.T) {
	if os.Getenv("NCAGENT_BENCH") != "1" {
		t.Skip("set NCAGENT_BENCH=1 to measure latency")
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fixed, _ := fakeToken("work", Scopes{"openid", "files"})
	b := &fakeBackend{token: func(context.Context, Peer, TokenRequest) (TokenResponse, error) { return fixed, nil }}
	logged := startServer(t, b, ServerOptions{Logger: slog.New(slog.NewTextHandler(logf, nil))})
	quiet := startServer(t, b, ServerOptions{Logger: discardLogger()})
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("loadavg at start: %s", strings.Join(strings.Fields(string(b))[:3], " "))
	}
	sides := []struct {
		name string
		c    *Client
		rt   []time.Duration
		tp   []float64
	}{{name: "ipc, log to file", c: NewClient(logged.path)}, {name: "ipc, no log", c: NewClient(quiet.path)}, {name: "floor", c: NewClient(floorServer(t))}}
	ctx := context.Background()
	timed := func(c *Client, n int, into *[]time.Duration) {
		for range n {
			t0 := time.Now()
			if _, err := c.Token(ctx, benchReq); err != nil {
				t.Fatal(err)
			}
			*into = append(*into, time.Since(t0))
		}
	}
	rate := func(c *Client) float64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 16 {
			wg.Go(func() {
				for time.Since(start) < 500*time.Millisecond {
					if _, err := c.Token(ctx, benchReq); err != nil {
						t.Error(err)
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / time.Since(start).Seconds()
	}
	for i := range sides {
		defer sides[i].c.Close()
		timed(sides[i].c, 200, new([]time.Duration)) // warm-up
	}
	for range 500 {
		for i := range sides {
			timed(sides[i].c, 20, &sides[i].rt)
		}
	}
	for range 10 {
		for i := range sides {
			sides[i].tp = append(sides[i].tp, rate(sides[i].c))
		}
	}
	pct := func(all []time.Duration, p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	med := func(v []float64) float64 { return (v[len(v)/2-1] + v[len(v)/2]) / 2 }
	floor := sides[len(sides)-1]
	slices.Sort(floor.rt)
	slices.Sort(floor.tp)
	for _, sd := range sides {
		slices.Sort(sd.rt)
		slices.Sort(sd.tp)
		t.Logf("%-16s 1 client (%d requests): p50 %v p99 %v, ratio p50 %.2f p99 %.2f; 16 clients (10 rounds of 500ms): median %.0f req/s, ratio %.2f",
			sd.name, len(sd.rt), pct(sd.rt, 0.5), pct(sd.rt, 0.99),
			float64(pct(sd.rt, 0.5))/float64(pct(floor.rt, 0.5)), float64(pct(sd.rt, 0.99))/float64(pct(floor.rt, 0.99)),
			med(sd.tp), med(sd.tp)/med(floor.tp))
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
