package ui

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"
	"sync"
)

// pageData is what the setup page template shows.
type pageData struct {
	Title     string
	Forbidden bool

	// The form.
	CSRF      string
	Form      setupForm
	FormError string

	// Progress and result of attempt Attempt.
	Attempt  int
	Account  string
	Server   string
	Refresh  bool
	Method   string
	Reason   string
	OpenURL  string
	UserCode string
	Success  bool
	User     string
	Failed   bool
	Message  string
	Next     string
}

// pageCSS is the page's only style; the CSP allows exactly it by hash.
const pageCSS = `
:root { color-scheme: light dark; --fg:#1f2937; --muted:#4b5563; --bg:#f3f4f6; --card:#fff; --line:#d1d5db; --accent:#1d4ed8; --ok:#15803d; --bad:#b91c1c; }
@media (prefers-color-scheme: dark) { :root { --fg:#e5e7eb; --muted:#9ca3af; --bg:#111827; --card:#1f2937; --line:#374151; --accent:#93c5fd; --ok:#4ade80; --bad:#fca5a5; } }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 34rem; margin: 3rem auto; padding: 2rem 2.25rem; background:var(--card); border:1px solid var(--line); border-radius: 12px; }
header { display:flex; align-items:center; gap:.6rem; color:var(--muted); font-size:.9rem; margin-bottom:1rem; }
header b { color:var(--fg); letter-spacing:.02em; }
h1 { font-size: 1.45rem; margin: 0 0 1rem; }
p { margin: .6rem 0; }
label { display:block; font-weight:600; margin-top:1rem; }
.hint { display:block; font-weight:400; color:var(--muted); font-size:.875rem; }
input[type=text], input[type=url], select { width:100%; margin-top:.35rem; padding:.55rem .7rem; font:inherit; color:inherit; background:transparent; border:1px solid var(--line); border-radius:8px; }
input:focus, select:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
details { margin-top: 1.2rem; }
summary { cursor:pointer; color:var(--accent); }
button, .button { display:inline-block; margin-top:1.5rem; padding:.6rem 1.2rem; font:inherit; font-weight:600; color:#fff; background:#1d4ed8; border:0; border-radius:8px; text-decoration:none; cursor:pointer; }
.error { color:var(--bad); font-weight:600; }
.ok { color:var(--ok); }
.status { font-size:1.05rem; }
.link { overflow-wrap:anywhere; font-family: ui-monospace, Menlo, Consolas, monospace; font-size:.85rem; padding:.6rem .75rem; border:1px solid var(--line); border-radius:8px; display:block; color:var(--accent); }
.code { font: 700 1.6rem/1 ui-monospace, Menlo, Consolas, monospace; letter-spacing:.15em; }
.muted { color:var(--muted); font-size:.9rem; }
`

// pageCSP allows nothing but the inline style above, forms to this origin,
// and no framing.
var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
}()

var pageTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="2">{{end}}
<title>{{.Title}} · ncagent</title>
<style>{{.CSS}}</style>
</head>
<body>
<main>
<header><b>ncagent</b> <span>Nextcloud sign-in for this computer</span></header>
<h1>{{.Title}}</h1>
{{- if .Forbidden}}
<p>This setup link is not valid here, or it was already used.</p>
<p>For a new link, choose <b>Add account…</b> in the ncagent menu. In a terminal, <code>ncagent login NAME --server URL</code> does the same.</p>
{{- else if .Success}}
<p class="status ok" id="result">✔ {{if .Message}}{{.Message}}{{else}}Signed in to {{.Server}}{{if .User}} as {{.User}}{{end}}{{end}}.</p>
<p>The account <b>{{.Account}}</b> is ready: programs on this computer get their Nextcloud tokens from the agent now, and the ncagent menu shows its state.</p>
<p class="muted">You can close this tab. This page has stopped for safety; choose Add account… in the menu to add another account.</p>
{{- else if .Failed}}
<p class="status error" id="result">{{.Message}}</p>
<p>{{.Next}}</p>
<a class="button" href="/?retry={{.Attempt}}">Try again</a>
{{- else if .Attempt}}
<p class="status" id="result">Signing in <b>{{.Account}}</b> at {{.Server}}{{if .Method}} with {{.Method}}{{end}}…</p>
{{- if .Reason}}<p class="muted">{{.Reason}}</p>{{end}}
{{- if .UserCode}}
<p>Enter this code on the sign-in page:</p>
<p class="code">{{.UserCode}}</p>
{{- end}}
{{- if .OpenURL}}
<p>A browser tab with the sign-in page should have opened. If it did not, open it here:</p>
<a class="link" href="{{.OpenURL}}" target="_blank" rel="noopener noreferrer">{{.OpenURL}}</a>
{{- else}}
<p>Contacting the server…</p>
{{- end}}
<p class="muted">This page updates by itself.</p>
{{- else}}
<p>Sign in once; the agent keeps the secret in your keychain and hands short-lived tokens to programs on this computer.</p>
{{- if .FormError}}<p class="error" id="form-error">{{.FormError}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="server">Nextcloud address
<span class="hint">The address you open in the browser, like https://cloud.example.com</span></label>
<input type="url" id="server" name="server" required placeholder="https://cloud.example.com" value="{{.Form.Server}}" autofocus>
<label for="account">Account name
<span class="hint">A short name for this account, used in the menu and by <code>ncagent login NAME</code>. Empty: taken from the address.</span></label>
<input type="text" id="account" name="account" placeholder="work" value="{{.Form.Account}}" pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}">
<label for="method">Sign-in method</label>
<select id="method" name="method">
<option value="auto"{{if eq .Form.Method "auto"}} selected{{end}}>Automatic (recommended)</option>
<option value="browser"{{if eq .Form.Method "browser"}} selected{{end}}>OpenID Connect in the browser</option>
<option value="app-password"{{if eq .Form.Method "app-password"}} selected{{end}}>Nextcloud app password</option>
</select>
<details{{if or .Form.Issuer .Form.ClientID .Form.RedirectHost}} open{{end}}>
<summary>Advanced: identity provider</summary>
<label for="issuer">Issuer <span class="hint">Optional. Only when sign-in goes through another identity provider, like Keycloak.</span></label>
<input type="url" id="issuer" name="issuer" placeholder="https://id.example.com/realms/main" value="{{.Form.Issuer}}">
<label for="client_id">Client id <span class="hint">Optional. The OpenID Connect client registered for ncagent.</span></label>
<input type="text" id="client_id" name="client_id" value="{{.Form.ClientID}}">
<label for="redirect_host">Redirect host <span class="hint">The loopback address the identity provider sends the browser back to. Automatic: localhost on Nextcloud's oidc app, 127.0.0.1 elsewhere.</span></label>
<select id="redirect_host" name="redirect_host">
<option value=""{{if eq .Form.RedirectHost ""}} selected{{end}}>Automatic</option>
<option value="localhost"{{if eq .Form.RedirectHost "localhost"}} selected{{end}}>localhost</option>
<option value="127.0.0.1"{{if eq .Form.RedirectHost "127.0.0.1"}} selected{{end}}>127.0.0.1</option>
</select>
</details>
<button type="submit" id="submit">Sign in</button>
</form>
{{- end}}
</main>
</body>
</html>
`))
})

// renderPage writes the page; a write error means the browser went away.
func renderPage(w io.Writer, d pageData) {
	_ = pageTmpl().Execute(w, struct {
		pageData
		CSS template.CSS
	}{d, template.CSS(pageCSS)})
}
