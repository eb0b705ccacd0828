//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
	"github.com/ncagent/ncagent/internal/testutil"
	"github.com/ncagent/ncagent/ipc"
)

// TestCLIBench measures, against a real "ncagent run --headless" (built
// without the race detector) whose account is signed in at the in-process
// authorization server and whose refresh token is in the real Secret
// Service, each figure as a ratio to a floor measured in the same run:
//
//   - cache-hit round trip of the agent against a plain net/http server
//     on a Unix socket answering the same bytes, in interleaved blocks,
//     from a plain net/http client with one keep-alive connection to
//     each: p50 and p99 of each;
//   - throughput of 16 concurrent clients against the same floor,
//     interleaved rounds of 500 ms;
//   - "ncagent token work --no-start" as a whole process against a minimal
//     Go client (dials the socket, sends the same request with net/http,
//     prints the body), interleaved pairs;
//   - "ncagent version" as a whole process, in the same interleaving,
//     against a Go program that prints a line;
//   - the agent's VmRSS after at least 10,000 requests and 5 s idle.
//
// The floor server, the floor client and the load generator are one
// small program the test builds (benchFloorSource), so that no figure
// depends on how the test itself is built (scripts/bench runs it with
// -race). The test asserts correctness only (every run
// exits 0, every timed token a cache hit, no token in the agent's log);
// the figures are for BENCHMARKS.md. scripts/bench runs it as
//
//	NCAGENT_BENCH=1 NCAGENT_BENCH_BIN=/tmp/ncagent dbus-run-session -- scripts/test-session -run TestCLIBench -v ./cmd/ncagent/
//
// NCAGENT_BENCH_PAIRS sets the process pairs (default 20);
// NCAGENT_BENCH_GODEBUG is passed to the agent as GODEBUG and its runtime
// trace lines (e.g. gctrace=1) are printed.
func TestCLIBench(t *testing.T) {
	if os.Getenv("NCAGENT_BENCH") != "1" {
		t.Skip("set NCAGENT_BENCH=1 to measure the CLI (scripts/bench does)")
	}
	testutil.RequireSecretService(t)
	pairs := 20
	if s := os.Getenv("NCAGENT_BENCH_PAIRS"); s != "" {
		var err error
		if pairs, err = strconv.Atoi(s); err != nil || pairs < 5 {
			t.Fatalf("NCAGENT_BENCH_PAIRS: got %q, want a number of at least 5", s)
		}
	}
	bin := benchBinary(t)
	floorBin := buildFloor(t)
	// Write the binaries' pages back first: freshly written page cache is
	// dirty, and smaps would count the mapped executable as private dirty.
	for _, b := range []string{bin, floorBin} {
		if f, err := os.Open(b); err == nil {
			f.Sync()
			f.Close()
		}
	}
	t.Logf("machine: %s, nproc %d, %s, loadavg %s", cpuModel(), runtime.NumCPU(), runtime.Version(), testutil.Loadavg())

	// HTTPS, as identity providers are in use: the TLS client is part of
	// the agent's memory.
	idp := idptest.New(t, idptest.Options{TLS: true, AccessTokenLifespan: time.Hour})
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, idp.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := provisionAgent(t, idp, fmt.Sprintf("scopes = [\"openid\", \"files\"]\nca_file = %q\n", caPath))
	secrets := []string{p.tok.RefreshToken, p.tok.AccessToken}
	socket := filepath.Join(p.sockDir, "agent.sock")
	env := append(os.Environ(),
		"NCAGENT_CONFIG="+p.config,
		"NCAGENT_SOCKET="+socket,
		"NCAGENT_KEYRING_SERVICE="+p.service,
		"NCAGENT_NO_START=1",
	)
	ag := startBenchAgent(t, bin, env)
	defer ag.stop(t)
	waitForAgent(t, socket)

	// One token through the CLI: the agent refreshes once and caches it.
	first := exec.Command(bin, "token", "work", "--no-start")
	first.Env = env
	out, err := first.Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("ncagent token: %v, %d bytes", err, len(out))
	}
	secrets = append(secrets, string(bytes.TrimSpace(out)))

	// The floor server answers what the agent answers, byte for byte in
	// its body and the headers the agent sets.
	agentClient := ipc.NewClient(socket)
	defer agentClient.Close()
	req := ipc.TokenRequest{Account: "work", ClientHint: "ncagent token"}
	tok, err := agentClient.Token(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := json.Marshal(tok)
	floorSock := filepath.Join(p.sockDir, "floor.sock")
	floorPID, stopFloor := startFloorServer(t, floorBin, floorSock, answer)
	defer stopFloor()
	body, _ := json.Marshal(req)
	served := 2

	// Round trips, interleaved in blocks of 20 (the load of the machine
	// changes by the second: both sides see the same), from the floor
	// program's plain net/http client, one keep-alive connection each.
	cpuAgent, cpuFloor := cpuTime(t, ag.cmd.Process.Pid), cpuTime(t, floorPID)
	var rt struct{ A, B []int64 }
	floorJSON(t, &rt, floorBin, "rtt", socket, floorSock, string(body), "500", "20")
	agentRT, floorRT := nanos(rt.A), nanos(rt.B)
	served += len(agentRT)
	t.Logf("round trip, keep-alive, %d requests each: agent %s; floor %s; ratio p50 %.2f, p99 %.2f",
		len(agentRT), agentRT.summary(), floorRT.summary(),
		ratio(agentRT.pct(0.5), floorRT.pct(0.5)), ratio(agentRT.pct(0.99), floorRT.pct(0.99)))

	// Throughput of 16 clients, interleaved rounds of 500 ms.
	var tp struct{ A, B []float64 }
	floorJSON(t, &tp, floorBin, "tp", socket, floorSock, string(body), "10", "500", "16")
	for _, r := range tp.A {
		served += int(r / 2)
	}
	t.Logf("throughput, 16 clients, 10 rounds of 500ms: agent median %.0f req/s (%s); floor median %.0f req/s (%s); ratio %.2f",
		median(tp.A), rates(tp.A), median(tp.B), rates(tp.B), median(tp.A)/median(tp.B))
	// CPU time per request of each server over both phases (the load of
	// the machine changes wall times far more than CPU times).
	nA, nB := float64(len(rt.A)), float64(len(rt.B))
	for i := range tp.A {
		nA += tp.A[i] / 2
		nB += tp.B[i] / 2
	}
	perA := (cpuTime(t, ag.cmd.Process.Pid) - cpuAgent).Seconds() * 1e6 / nA
	perB := (cpuTime(t, floorPID) - cpuFloor).Seconds() * 1e6 / nB
	t.Logf("server CPU (user+sys) per request over both: agent %.1fµs (%.0f requests); floor %.1fµs (%.0f); ratio %.2f",
		perA, nA, perB, nB, perA/perB)

	// Whole processes, interleaved: ncagent token, the floor client,
	// ncagent version, the floor's version.
	var cli, floorCLI, version, floorVersion latencies
	for range pairs {
		cli = append(cli, timeProcess(t, env, bin, "token", "work", "--no-start"))
		floorCLI = append(floorCLI, timeProcess(t, env, floorBin, "token", socket, string(body)))
		version = append(version, timeProcess(t, env, bin, "version"))
		floorVersion = append(floorVersion, timeProcess(t, env, floorBin, "version"))
		served += 2
	}
	t.Logf("process, %d interleaved runs each: ncagent token %s; floor client %s; ratio p50 %.2f",
		pairs, cli.summary(), floorCLI.summary(), ratio(cli.pct(0.5), floorCLI.pct(0.5)))
	t.Logf("process: ncagent version %s; floor (prints a line) %s; ratio p50 %.2f",
		version.summary(), floorVersion.summary(), ratio(version.pct(0.5), floorVersion.pct(0.5)))

	// Memory after at least 10,000 requests, idle.
	for served < 10000 {
		if _, err := agentClient.Token(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		served++
	}
	agentClient.Close()
	time.Sleep(5 * time.Second)
	t.Logf("agent after %d requests and 5s idle: %s", served, procMemory(t, ag.cmd.Process.Pid))

	// The first request after the idle release maps again the pages of
	// the executable it runs (releaseExecutable): its time against the
	// request right after it, each on a new connection as an ncagent
	// process makes, five times.
	var cold, warm latencies
	for range 5 {
		time.Sleep(3 * time.Second) // past the release, 2 s after the last request
		cold = append(cold, timeRequest(t, socket, req))
		warm = append(warm, timeRequest(t, socket, req))
	}
	t.Logf("request on a new connection, first after the idle release: %s; the next one: %s; ratio p50 %.2f",
		cold.summary(), warm.summary(), ratio(cold.pct(0.5), warm.pct(0.5)))
	t.Logf("agent after them: %s", procMemory(t, ag.cmd.Process.Pid))
	t.Logf("loadavg: %s", testutil.Loadavg())

	if got := idp.Calls("refresh_token"); got != 1 {
		t.Errorf("refresh calls: got %d, want 1 (every timed token a cache hit)", got)
	}
	ag.stop(t)
	if sec, err := p.kc.Get("work"); err == nil {
		secrets = append(secrets, sec.Reveal())
	}
	ag.checkLog(t, secrets)
}

// benchAgent is an "ncagent run --headless" process logging to a file.
type benchAgent struct {
	cmd     *exec.Cmd
	logPath string
	done    chan error
	stopped bool
}

func startBenchAgent(t *testing.T, bin string, env []string) *benchAgent {
	t.Helper()
	ag := &benchAgent{logPath: filepath.Join(t.TempDir(), "agent.log"), done: make(chan error, 1)}
	logf, err := os.Create(ag.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ag.cmd = exec.Command(bin, "run", "--headless")
	ag.cmd.Env = env
	if g := os.Getenv("NCAGENT_BENCH_GODEBUG"); g != "" {
		ag.cmd.Env = append(slices.Clone(env), "GODEBUG="+g)
	}
	ag.cmd.Stdout, ag.cmd.Stderr = logf, logf
	if err := ag.cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() { ag.done <- ag.cmd.Wait() }()
	return ag
}

// stop sends SIGTERM and waits for the agent, once.
func (ag *benchAgent) stop(t *testing.T) {
	if ag.stopped {
		return
	}
	ag.stopped = true
	ag.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-ag.done:
		if err != nil {
			t.Errorf("agent exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		ag.cmd.Process.Kill()
		t.Errorf("agent did not stop within 20s of SIGTERM")
	}
}

// checkLog fails t when the agent's log holds a secret or lacks the
// record of tokens handed out.
func (ag *benchAgent) checkLog(t *testing.T, secrets []string) {
	logs, err := os.ReadFile(ag.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("NCAGENT_BENCH_GODEBUG") != "" {
		// The runtime's own trace lines (GODEBUG=gctrace=1 and the like).
		for line := range strings.Lines(string(logs)) {
			if !strings.Contains(line, "level=") && !strings.Contains(line, "msg=") {
				t.Logf("agent runtime: %s", strings.TrimSpace(line))
			}
		}
	}
	for i, s := range secrets {
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("agent log holds secret #%d", i)
		}
	}
	if !bytes.Contains(logs, []byte("ipc: token issued")) {
		t.Errorf("agent log: got no %q record, want one per token", "ipc: token issued")
	}
}

// benchFloorSource is the floor of the benchmarks and their load
// generator, plain net/http over Unix sockets, in a process of its own
// (never built with -race):
//
//	floor serve SOCKET    answers every request with the JSON body read
//	                      from stdin and the headers the agent sets
//	floor token SOCKET BODY
//	                      POSTs BODY to /v1/token and prints the answer
//	floor version         prints a line (the floor of a process start)
//	floor rtt A B BODY ROUNDS BLOCK
//	                      ROUNDS times BLOCK sequential keep-alive POSTs to
//	                      A, then to B; prints {"a":[ns...],"b":[ns...]}
//	floor tp A B BODY ROUNDS MS CLIENTS
//	                      ROUNDS times CLIENTS concurrent clients posting
//	                      for MS ms to A, then to B; prints the rates
const benchFloorSource = `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func client(sock string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &http.Client{Transport: tr}
}

func post(c *http.Client, body string) []byte {
	resp, err := c.Post("http://ncagent/v1/token", "application/json", strings.NewReader(body))
	if err != nil {
		os.Exit(1)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		os.Exit(1)
	}
	return b
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		os.Exit(2)
	}
	return n
}

func main() {
	switch os.Args[1] {
	case "version":
		fmt.Println("floor")
	case "serve":
		body, err := io.ReadAll(os.Stdin)
		if err != nil {
			os.Exit(1)
		}
		ln, err := net.Listen("unix", os.Args[2])
		if err != nil {
			os.Exit(1)
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Cache-Control"] = []string{"no-store"}
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			w.Write(body)
		}))
	case "token":
		os.Stdout.Write(post(client(os.Args[2]), os.Args[3]))
	case "rtt":
		a, b, body := client(os.Args[2]), client(os.Args[3]), os.Args[4]
		rounds, block := atoi(os.Args[5]), atoi(os.Args[6])
		var out struct{ A, B []int64 }
		for range rounds {
			for _, side := range []struct {
				c  *http.Client
				to *[]int64
			}{{a, &out.A}, {b, &out.B}} {
				for range block {
					t0 := time.Now()
					post(side.c, body)
					*side.to = append(*side.to, int64(time.Since(t0)))
				}
			}
		}
		json.NewEncoder(os.Stdout).Encode(out)
	case "tp":
		a, b, body := client(os.Args[2]), client(os.Args[3]), os.Args[4]
		rounds, d, clients := atoi(os.Args[5]), time.Duration(atoi(os.Args[6]))*time.Millisecond, atoi(os.Args[7])
		rate := func(c *http.Client) float64 {
			var n atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for range clients {
				wg.Go(func() {
					for time.Since(start) < d {
						post(c, body)
						n.Add(1)
					}
				})
			}
			wg.Wait()
			return float64(n.Load()) / time.Since(start).Seconds()
		}
		var out struct{ A, B []float64 }
		for range rounds {
			out.A = append(out.A, rate(a))
			out.B = append(out.B, rate(b))
		}
		json.NewEncoder(os.Stdout).Encode(out)
	}
}
`

// buildFloor builds benchFloorSource.
func buildFloor(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "floor.go"), []byte(benchFloorSource), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "floor")
	cmd := exec.Command("go", "build", "-o", bin, "floor.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build floor: %v\n%s", err, out)
	}
	return bin
}

// startFloorServer runs the floor server on sock answering answer, which
// it gets on stdin (it holds a token: never on disk).
func startFloorServer(t *testing.T, bin, sock string, answer []byte) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, "serve", sock)
	cmd.Stdin = bytes.NewReader(answer)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := awaitFloor(sock); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	return cmd.Process.Pid, func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

func awaitFloor(sock string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("floor server on %s: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// floorJSON runs the floor program with args and decodes its output.
func floorJSON(t *testing.T, v any, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("floor %s: %v (a request failed)", args[0], err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("floor %s: %v", args[0], err)
	}
}

// timeRequest times one token request of a new client.
func timeRequest(t *testing.T, socket string, req ipc.TokenRequest) time.Duration {
	t.Helper()
	c := ipc.NewClient(socket)
	defer c.Close()
	t0 := time.Now()
	if _, err := c.Token(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

func nanos(ns []int64) latencies {
	out := make(latencies, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n)
	}
	return out
}

// timeProcess runs bin with args (stdout to /dev/null) and returns its
// wall time; it must exit 0.
func timeProcess(t *testing.T, env []string, bin string, args ...string) time.Duration {
	t.Helper()
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = devnull, devnull
	t0 := time.Now()
	err = cmd.Run()
	el := time.Since(t0)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(bin), args[0], err)
	}
	return el
}

// latencies are durations of one kind of operation.
type latencies []time.Duration

// pct returns the p-th quantile (nearest rank).
func (l latencies) pct(p float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (l latencies) summary() string {
	return fmt.Sprintf("p50 %s p90 %s p99 %s", fmtDur(l.pct(0.5)), fmtDur(l.pct(0.9)), fmtDur(l.pct(0.99)))
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rates(v []float64) string {
	parts := make([]string, len(v))
	for i, r := range v {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(parts, " ")
}

// cpuModel returns the first model name of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown cpu"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown cpu"
}

// benchBinary returns $NCAGENT_BENCH_BIN, or builds ncagent into a
// temporary directory.
func benchBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NCAGENT_BENCH_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "ncagent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// waitForAgent waits up to 15s for the agent on socket to answer.
func waitForAgent(t *testing.T, socket string) {
	t.Helper()
	if err := awaitAgent(socket, 15*time.Second); err != nil {
		t.Fatal(err)
	}
}

// procMemory reports VmRSS, VmHWM, RssAnon and RssFile of pid from
// /proc/<pid>/status, and Pss and Private_Dirty from smaps_rollup (the
// executable's clean pages are shared page cache; private dirty pages are
// what the agent alone costs).
func procMemory(t *testing.T, pid int) string {
	t.Helper()
	fields := procFields(t, pid, "status", "VmRSS", "VmHWM", "RssAnon", "RssFile")
	if len(fields) == 0 {
		t.Fatalf("agent memory: no VmRSS in /proc/%d/status", pid)
	}
	fields = append(fields, procFields(t, pid, "smaps_rollup", "Pss", "Private_Dirty")...)
	return strings.Join(fields, " ")
}

// procFields returns "key=value" for the given keys of /proc/<pid>/<file>.
func procFields(t *testing.T, pid int, file string, keys ...string) []string {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		t.Fatalf("agent memory: %v", err)
	}
	defer f.Close()
	var fields []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if slices.Contains(keys, k) {
			fields = append(fields, k+"="+strings.Join(strings.Fields(v), " "))
		}
	}
	return fields
}

// cpuTime returns the user and system CPU time pid used so far
// (/proc/<pid>/stat, in clock ticks of 10 ms).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("cpu time: %v", err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
