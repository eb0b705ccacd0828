package proxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ncagent/ncagent/broker"
)

// streamSize is the body streamed each way by BenchmarkStream.
const streamSize = 512 << 20

// pattern is an endless reader of a fixed byte pattern, so a large body
// never exists in memory at once.
type pattern struct{ n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n + int64(i))
	}
	p.n += int64(len(b))
	return len(b), nil
}

// procKiB returns a field of /proc/self/status in KiB.
func procKiB(tb testing.TB, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkStream uploads and downloads 512 MiB through the proxy (PUT
// then GET on the fake Nextcloud, whose WebDAV files live on disk) and
// reports the peak RSS growth of the whole test process, which holds the
// client, the proxy and the upstream: a bound on what the proxy buffers.
//
//	go test -run '^$' -bench BenchmarkStream -benchtime 1x ./proxy
func BenchmarkStream(b *testing.B) {
	w := newWorld(b, worldOptions{davDir: b.TempDir()})
	s := w.open(b)
	file := s.URL() + "/remote.php/dav/files/" + s.Username() + "/big.bin"
	client := &http.Client{Transport: &http.Transport{}}
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM to the current RSS
		before := procKiB(b, "VmRSS")
		start := time.Now()
		req, _ := http.NewRequest("PUT", file, io.LimitReader(&pattern{}, streamSize))
		req.ContentLength = streamSize
		req.SetBasicAuth(s.Username(), s.Credential())
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b.Fatalf("PUT: HTTP %d", resp.StatusCode)
		}
		up := time.Since(start)
		start = time.Now()
		req, _ = http.NewRequest("GET", file, nil)
		req.SetBasicAuth(s.Username(), s.Credential())
		resp, err = client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != streamSize {
			b.Fatalf("GET: %d bytes, %v", n, err)
		}
		down := time.Since(start)
		growth := float64(procKiB(b, "VmHWM")-before) / 1024
		b.ReportMetric(growth, "peak-rss-growth-MiB")
		b.ReportMetric(streamSize/up.Seconds()/(1<<20), "upload-MiB/s")
		b.ReportMetric(streamSize/down.Seconds()/(1<<20), "download-MiB/s")
		if growth >= 16 {
			b.Errorf("peak RSS grew by %.1f MiB streaming 512 MiB each way, want < 16", growth)
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1 // nearest rank
	return s[max(0, min(i, len(s)-1))]
}

// BenchmarkLatency measures the latency the proxy adds: each iteration
// sends one GET of a 1 KiB file directly to the fake Nextcloud (with the
// account's Bearer) and one through the proxy (with the session
// credential), alternating so both see the same load. Both clients keep
// their connections alive. It reports p50 and p99 of each and their
// ratios.
//
//	go test -run '^$' -bench BenchmarkLatency -benchtime 3000x ./proxy
func BenchmarkLatency(b *testing.B) {
	for _, kind := range []broker.Kind{broker.KindOIDC, broker.KindAppPassword} {
		b.Run(string(kind), func(b *testing.B) { benchLatency(b, kind) })
	}
}

func benchLatency(b *testing.B, kind broker.Kind) {
	w := newWorld(b, worldOptions{kind: kind})
	s := w.open(b)
	path := "/remote.php/dav/files/" + s.Username() + "/small.txt"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	auth, err := BrokerCredentials{Broker: w.b}.Authorization(b.Context(), s.Spec)
	if err != nil {
		b.Fatal(err)
	}
	do := func(url, authz string, body io.Reader, method string) {
		req, _ := http.NewRequest(method, url, body)
		req.Header.Set("Authorization", authz)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b.Fatalf("%s %s: HTTP %d", method, url, resp.StatusCode)
		}
	}
	do(w.nc.URL+path, auth, bytes.NewReader(bytes.Repeat([]byte("x"), 1024)), "PUT")
	sess := "Basic " + basic(s.Username(), s.Credential())
	var direct, proxied []time.Duration
	for i := 0; i < 50; i++ { // warm both connection pools
		do(w.nc.URL+path, auth, nil, "GET")
		do(s.URL()+path, sess, nil, "GET")
	}
	for b.Loop() {
		t0 := time.Now()
		do(w.nc.URL+path, auth, nil, "GET")
		t1 := time.Now()
		do(s.URL()+path, sess, nil, "GET")
		t2 := time.Now()
		direct = append(direct, t1.Sub(t0))
		proxied = append(proxied, t2.Sub(t1))
	}
	d50, d99 := percentile(direct, .50), percentile(direct, .99)
	p50, p99 := percentile(proxied, .50), percentile(proxied, .99)
	b.ReportMetric(float64(d50.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(d99.Microseconds()), "direct-p99-µs")
	b.ReportMetric(float64(p50.Microseconds()), "proxy-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "proxy-p99-µs")
	b.ReportMetric(float64(p50)/float64(d50), "p50-ratio")
	b.ReportMetric(float64(p99)/float64(d99), "p99-ratio")
	b.ReportMetric(0, "ns/op")
	if testing.Verbose() {
		fmt.Printf("%s: direct p50 %v p99 %v, proxy p50 %v p99 %v\n", kind, d50, d99, p50, p99)
	}
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
