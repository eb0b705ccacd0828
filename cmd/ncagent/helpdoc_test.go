package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ncagent/ncagent/agent"
)

// runVerb runs the CLI in-process with env vars and returns its stdout.
func runVerb(t *testing.T, vars map[string]string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code := run(context.Background(), e, args)
	if code != 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), code
}

// TestManPage: the page ncagent man prints (what scripts/package puts in
// the packages) passes groff's warnings, and man -l renders it with every
// verb, its flags and the environment variables.
func TestManPage(t *testing.T) {
	page, code := runVerb(t, nil, "man")
	if code != 0 {
		t.Fatalf("ncagent man: exit %d", code)
	}
	path := filepath.Join(t.TempDir(), "ncagent.1")
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man not found: install man-db to render the page")
	}
	if out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -ww: %v\n%s", err, out)
	}
	cmd := exec.Command("man", "-l", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("man -l: %v", err)
	}
	text := string(out)
	var want []string
	for _, v := range verbNames() {
		want = append(want, "\n   "+v+"\n")
		for _, f := range verbFlags(verbHelp(v)) {
			want = append(want, "-"+f.name)
		}
	}
	want = append(want, "NCAGENT_SOCKET", "NCAGENT_CONFIG", "NCAGENT_NO_START", "NCAGENT_LOG_LEVEL",
		"NCAGENT_FILE_STORE",
		"EXIT STATUS", "EXAMPLES", "CONFIGURATION", "default_account", "keepalive", "identity_file", "store_locked", "130")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("man -l output lacks %q", w)
		}
	}
}

// TestHelpConfig: ncagent help config documents every key of the config
// files, each key taken from the toml tags of agent.Config by reflection,
// so that a key added without documentation fails here.
func TestHelpConfig(t *testing.T) {
	out, code := runVerb(t, nil, "help", "config")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	tables, keys := configKeys(reflect.TypeFor[agent.Config](), "")
	if len(keys) < 25 {
		t.Fatalf("found only %d keys in agent.Config: %q", len(keys), keys)
	}
	for _, table := range tables {
		if !strings.Contains(out, "["+table+"]") {
			t.Errorf("help config lacks the table [%s]", table)
		}
	}
	for _, key := range keys {
		// An entry: the key first on its line, or in a list of keys.
		entry := regexp.MustCompile(`(?m)^ +(\S+, )*` + regexp.QuoteMeta(key) + `(,| |$)`)
		if !entry.MatchString(out) {
			t.Errorf("help config does not document %q", key)
		}
	}
	for _, s := range []string{"Example config.toml:", "NCAGENT_STATE", "SIGHUP"} {
		if !strings.Contains(out, s) {
			t.Errorf("help config lacks %q", s)
		}
	}
	// The keys added for issue 9 are in the example too.
	for _, key := range []string{"tokens_per_grant", "exchange_params", "redirect_host"} {
		if !regexp.MustCompile(`(?m)^  ` + key + ` += `).MatchString(out) {
			t.Errorf("the example of help config does not set %s", key)
		}
	}
}

// configKeys returns the tables (as help config names them: accounts.NAME)
// and the keys of the TOML document t decodes, from its toml tags.
func configKeys(t reflect.Type, prefix string) (tables, keys []string) {
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		ft := f.Type
		table := name
		if ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem().Kind() == reflect.Struct {
			ft, table = ft.Elem().Elem(), name+".NAME"
		}
		if ft.Kind() != reflect.Struct {
			keys = append(keys, name)
			continue
		}
		if prefix != "" {
			table = prefix + "." + table
		}
		tables = append(tables, table)
		subTables, subKeys := configKeys(ft, table)
		tables, keys = append(tables, subTables...), append(keys, subKeys...)
	}
	return tables, keys
}

// TestBashCompletion: the script parses (bash -n) and completes commands,
// subcommands, flags and account names the way bash calls it on TAB.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	script, code := runVerb(t, nil, "completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d", code)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ncagent.bash")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// Account names come from "ncagent accounts --names": a stand-in
	// ncagent on PATH that is this very CLI would need the test binary as
	// ncagent; a tiny script printing what the real verb prints is enough
	// here, and the real verb is checked below.
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[accounts.work]\nkind = \"app-password\"\nserver = \"https://a.example\"\nuser = \"u\"\n[accounts.home]\nkind = \"app-password\"\nserver = \"https://b.example\"\nuser = \"u\"\n"), 0o600)
	names, code := runVerb(t, map[string]string{"NCAGENT_CONFIG": cfg}, "accounts", "--names")
	if code != 0 || names != "home\nwork\n" {
		t.Fatalf("accounts --names: got %q (exit %d), want home and work", names, code)
	}
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "ncagent"), []byte("#!/bin/sh\nprintf '"+strings.ReplaceAll(names, "\n", `\n`)+"'\n"), 0o755)
	for _, tc := range []struct {
		words string // the command line up to the cursor
		want  string // COMPREPLY, space-separated
	}{
		{"ncagent tok", "token"},
		{"ncagent re", "remove revoke"},
		{"ncagent token ", "home work"},
		{"ncagent token w", "work"},
		{"ncagent token --for", "--format"},
		{"ncagent autostart st", "status"},
		{"ncagent completion ", "bash zsh fish"},
		{"ncagent help con", "config"},
	} {
		t.Run(tc.words, func(t *testing.T) {
			prog := `source "$1"; read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _ncagent; echo "${COMPREPLY[*]}"`
			cmd := exec.Command("bash", "-c", prog, "bash", path, tc.words)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bash: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("complete %q: got %q, want %q", tc.words, got, tc.want)
			}
		})
	}
}

// TestCompletionScriptsParse runs each shell's syntax check where the
// shell is installed.
func TestCompletionScriptsParse(t *testing.T) {
	for _, sh := range []struct{ name, check string }{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		t.Run(sh.name, func(t *testing.T) {
			script, code := runVerb(t, nil, "completion", sh.name)
			if code != 0 || !strings.Contains(script, "accounts --names") {
				t.Fatalf("completion %s: exit %d, want a script that completes account names", sh.name, code)
			}
			if _, err := exec.LookPath(sh.name); err != nil {
				t.Skipf("%s not found: its syntax is not checked", sh.name)
			}
			path := filepath.Join(t.TempDir(), "c")
			os.WriteFile(path, []byte(script), 0o644)
			if out, err := exec.Command(sh.name, sh.check, path).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", sh.name, sh.check, err, out)
			}
		})
	}
	if _, code := runVerb(t, nil, "completion", "tcsh"); code != exitUsage {
		t.Errorf("completion tcsh: got exit %d, want %d", code, exitUsage)
	}
}
