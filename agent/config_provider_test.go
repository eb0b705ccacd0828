package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigProviderQuirks(t *testing.T) {
	write := func(t *testing.T, body string) string {
		p := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(t, `[accounts.dex]
kind = "oidc"
server = "https://cloud.example.com"
issuer = "https://dex.example.com"
client_id = "ncagent"
tokens_per_grant = "one"
exchange_params = { connector_id = "ldap" }
`)
	cfg, _, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cfg.Accounts["dex"].Broker("dex")
	if err != nil {
		t.Fatal(err)
	}
	if a.TokensPerGrant != "one" || a.ExchangeParams["connector_id"] != "ldap" {
		t.Errorf("got tokens_per_grant %q exchange_params %v", a.TokensPerGrant, a.ExchangeParams)
	}
	for body, want := range map[string]string{
		`tokens_per_grant = "two"`:                      "tokens_per_grant",
		`exchange_params = { subject_token = "x" }`:     "subject_token",
		`exchange_params = { grant_type = "password" }`: "exchange_params",
	} {
		_, _, err := LoadConfig(write(t, "[accounts.x]\nkind = \"oidc\"\nserver = \"https://c.example.com\"\nclient_id = \"c\"\n"+body+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %s", body, err, want)
		}
	}
}
