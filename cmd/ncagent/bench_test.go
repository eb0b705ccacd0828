//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ncagent/ncagent/internal/idptest"
)

// TestCLIBench measures the CLI as a whole process and the agent's memory,
// against a real "ncagent run --headless" (built without the race
// detector) whose account is signed in at the in-process authorization
// server and whose refresh token is in the real Secret Service:
//
//   - the agent's VmRSS and VmHWM 5 s after it served its first token;
//   - "ncagent token work --no-start" timed by hyperfine (cache hits);
//   - "ncagent socket-path" likewise, the floor of starting the binary;
//   - the agent's VmRSS and VmHWM after that load.
//
// It asserts correctness only (every run exits 0, no token in the agent's
// log); the figures are for BENCHMARKS.md. scripts/bench runs it as
//
//	NCAGENT_BENCH=1 NCAGENT_BENCH_BIN=/tmp/ncagent dbus-run-session -- scripts/test-session -run TestCLIBench -v ./cmd/ncagent/
//
// NCAGENT_BENCH_RUNS sets hyperfine's runs per command (default 1000);
// NCAGENT_BENCH_GODEBUG is passed to the agent as GODEBUG and its runtime
// trace lines (e.g. gctrace=1) are printed.
func TestCLIBench(t *testing.T) {
	if os.Getenv("NCAGENT_BENCH") != "1" {
		t.Skip("set NCAGENT_BENCH=1 to measure the CLI (scripts/bench does)")
	}
	secretService(t)
	hyperfine, err := exec.LookPath("hyperfine")
	if err != nil {
		t.Fatalf("hyperfine not found: install it (apt-get install hyperfine): %v", err)
	}
	runs := 1000
	if s := os.Getenv("NCAGENT_BENCH_RUNS"); s != "" {
		if runs, err = strconv.Atoi(s); err != nil || runs < 10 {
			t.Fatalf("NCAGENT_BENCH_RUNS: got %q, want a number of at least 10", s)
		}
	}
	bin := benchBinary(t)
	// Write the binary's pages back first: freshly written page cache is
	// dirty, and smaps would count the mapped executable as private dirty.
	if f, err := os.Open(bin); err == nil {
		f.Sync()
		f.Close()
	}

	// HTTPS, as identity providers are in use: the TLS client is part of
	// the agent's memory.
	idp := idptest.New(t, idptest.Options{TLS: true, AccessTokenLifespan: time.Hour})
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, idp.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := provisionAgent(t, idp, fmt.Sprintf("scopes = [\"openid\", \"files\"]\nca_file = %q\n", caPath))
	tok, kc, cfgPath, sockDir, service := p.tok, p.kc, p.config, p.sockDir, p.service
	dir := t.TempDir()
	secrets := []string{tok.RefreshToken, tok.AccessToken}
	socket := filepath.Join(sockDir, "agent.sock")
	env := append(os.Environ(),
		"NCAGENT_CONFIG="+cfgPath,
		"NCAGENT_SOCKET="+socket,
		"NCAGENT_KEYRING_SERVICE="+service,
		"NCAGENT_NO_START=1",
	)

	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	run := exec.Command(bin, "run", "--headless")
	run.Env = env
	if g := os.Getenv("NCAGENT_BENCH_GODEBUG"); g != "" {
		run.Env = append(slices.Clone(env), "GODEBUG="+g)
	}
	run.Stdout, run.Stderr = logf, logf
	if err := run.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		run.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent exit: %v", err)
			}
		case <-time.After(20 * time.Second):
			run.Process.Kill()
			t.Errorf("agent did not stop within 20s of SIGTERM")
		}
	}
	defer stop()
	waitForAgent(t, socket)

	// One token through the CLI: the agent refreshes once and caches it.
	first := exec.Command(bin, "token", "work", "--no-start")
	first.Env = env
	out, err := first.Output()
	if err != nil {
		t.Fatalf("ncagent token: %v", err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("ncagent token: got an empty token")
	}
	secrets = append(secrets, string(bytes.TrimSpace(out)))
	t.Logf("loadavg: %s", loadavg())

	time.Sleep(5 * time.Second) // the idle period the memory goal is about
	t.Logf("agent idle 5s after one token: %s", procMemory(t, run.Process.Pid))

	token := runHyperfine(t, hyperfine, env, runs, bin+" token work --no-start")
	t.Logf("ncagent token work --no-start: %s", token)
	floor := runHyperfine(t, hyperfine, env, runs, bin+" socket-path")
	t.Logf("ncagent socket-path (process start floor): %s", floor)
	t.Logf("agent after %d token processes: %s", runs+hyperfineWarmup(runs), procMemory(t, run.Process.Pid))
	t.Logf("loadavg: %s", loadavg())

	if got := idp.Calls("refresh_token"); got != 1 {
		t.Errorf("refresh calls: got %d, want 1 (every timed token a cache hit)", got)
	}
	stop()
	if sec, err := kc.Get("work"); err == nil {
		secrets = append(secrets, sec.Reveal())
	}
	logs, err := os.ReadFile(logPath)
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

// runHyperfine times command (no shell) runs times after 5% warm-up runs
// and summarises hyperfine's JSON export: every run must exit 0.
func runHyperfine(t *testing.T, hyperfine string, env []string, runs int, command string) string {
	t.Helper()
	export := filepath.Join(t.TempDir(), "hyperfine.json")
	cmd := exec.Command(hyperfine, "--shell=none", "--style=none",
		"--warmup", strconv.Itoa(hyperfineWarmup(runs)), "--runs", strconv.Itoa(runs),
		"--export-json", export, command)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hyperfine %s: %v\n%s", command, err, out)
	}
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Results []struct {
			Times     []float64 `json:"times"`
			ExitCodes []int     `json:"exit_codes"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Results) != 1 {
		t.Fatalf("hyperfine export: got %d results (%v), want 1", len(res.Results), err)
	}
	r := res.Results[0]
	for i, code := range r.ExitCodes {
		if code != 0 {
			t.Fatalf("%s: run %d exited %d, want 0", command, i, code)
		}
	}
	if len(r.Times) != runs {
		t.Fatalf("%s: got %d timed runs, want %d", command, len(r.Times), runs)
	}
	times := slices.Clone(r.Times)
	slices.Sort(times)
	pct := func(p float64) string {
		i := int(math.Ceil(float64(len(times))*p)) - 1
		return fmt.Sprintf("%.2fms", times[min(max(i, 0), len(times)-1)]*1000)
	}
	var sum float64
	for _, v := range times {
		sum += v
	}
	return fmt.Sprintf("runs=%d min=%s p50=%s p90=%s p99=%s max=%s mean=%.2fms", len(times),
		pct(0), pct(0.50), pct(0.90), pct(0.99), pct(1), sum/float64(len(times))*1000)
}

func hyperfineWarmup(runs int) int { return max(runs/20, 1) }

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
