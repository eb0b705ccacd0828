package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzMergeConfigs: for any two decodable files, the merge keeps every
// account of both, every value config.toml sets wins, the state's values
// fill the rest, and neither input is changed.
func FuzzMergeConfigs(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.toml"))
	var seeds [][]byte
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	for i := range seeds {
		f.Add(seeds[i], seeds[(i+1)%len(seeds)])
	}
	f.Add([]byte("[accounts.w]\nkind = \"oidc\"\nserver = \"https://a.example\"\n"), []byte("[accounts.w]\nscopes = [\"files\"]\n[accounts.w.endpoints]\ntoken = \"https://t.example\"\n"))
	f.Fuzz(func(t *testing.T, stateData, userData []byte) {
		state, _, err := decodeConfig(stateData)
		if err != nil {
			return
		}
		user, _, err := decodeConfig(userData)
		if err != nil {
			return
		}
		stateBefore, _ := state.encode()
		userBefore, _ := user.encode()
		m := mergeConfigs(state, user)
		for name := range state.Accounts {
			if m.Accounts[name] == nil {
				t.Fatalf("account %q of the state file lost", name)
			}
		}
		for name, ua := range user.Accounts {
			ma := m.Accounts[name]
			if ma == nil {
				t.Fatalf("account %q of config.toml lost", name)
			}
			checkOverlay(t, name, reflect.ValueOf(*ma), reflect.ValueOf(*ua), stateValue(state, name))
		}
		if d := user.Agent.DefaultAccount; d != "" && m.Agent.DefaultAccount != d {
			t.Fatalf("default: got %q, want the user's %q", m.Agent.DefaultAccount, d)
		}
		if after, _ := state.encode(); string(after) != string(stateBefore) {
			t.Fatalf("merge changed the state config")
		}
		if after, _ := user.encode(); string(after) != string(userBefore) {
			t.Fatalf("merge changed the user config")
		}
	})
}

func stateValue(st *Config, name string) reflect.Value {
	if ac := st.Accounts[name]; ac != nil {
		return reflect.ValueOf(*ac)
	}
	return reflect.ValueOf(AccountConfig{})
}

// checkOverlay: each field of merged is user's when user sets it, else
// state's.
func checkOverlay(t *testing.T, name string, merged, user, state reflect.Value) {
	t.Helper()
	for i := range user.NumField() {
		mf, uf, sf := merged.Field(i), user.Field(i), state.Field(i)
		if uf.Kind() == reflect.Struct {
			checkOverlay(t, name, mf, uf, sf)
			continue
		}
		want := sf
		if !uf.IsZero() {
			want = uf
		}
		if !reflect.DeepEqual(mf.Interface(), want.Interface()) {
			t.Fatalf("account %q field %s: got %v, want %v", name, user.Type().Field(i).Name, mf.Interface(), want.Interface())
		}
	}
}
