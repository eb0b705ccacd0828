package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ncagent/ncagent/ipc"
)

// scriptWait bounds every wait of the script commands: generous, since the
// suite shares two loaded cores with other tests.
const scriptWait = 30 * time.Second

// browserLog is where fakeBrowser records, in $WORK, one line per page it
// ended on.
const browserLog = "browser.log"

// fakeBrowser is the xdg-open of the script tests: a scripted browser for
// the URL in its argument. It follows redirects with an HTTP client (the
// authorization server approves at once, so it lands on the agent's
// loopback callback), then submits the form the page offers, the way a
// user clicks through Nextcloud's login page: the one whose action
// contains $FAKE_BROWSER ("grant" when unset, e.g. "deny"). It appends
// "status=<HTTP status> title=<page title>" for the page it ended on to
// $WORK/browser.log and exits 0, as a browser does whatever the page says.
//
// FAKE_BROWSER_HOLD=FILE makes it wait until FILE exists before it opens
// the URL (a user who takes their time). It never writes a URL: their
// queries carry authorization codes and states.
func fakeBrowser() int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: xdg-open URL")
		return 2
	}
	if hold := os.Getenv("FAKE_BROWSER_HOLD"); hold != "" {
		if err := waitFor(scriptWait, func() error {
			_, err := os.Stat(hold)
			return err
		}); err != nil {
			return recordBrowser(fmt.Sprintf("error=held too long: %v", err))
		}
	}
	action := os.Getenv("FAKE_BROWSER")
	if action == "" {
		action = "grant"
	}
	target, err := followTrampoline(os.Args[1])
	if err != nil {
		return recordBrowser(fmt.Sprintf("error=trampoline: %v", err))
	}
	c := &http.Client{Timeout: scriptWait}
	resp, err := c.Get(target)
	for i := 0; err == nil && i < 3; i++ {
		body := readPage(resp)
		target, values, ok := pickForm(body, action)
		if !ok {
			return recordBrowser(fmt.Sprintf("status=%d title=%s", resp.StatusCode, pageTitle(body)))
		}
		next, perr := resp.Request.URL.Parse(target)
		if perr != nil {
			return recordBrowser("error=bad form action")
		}
		resp, err = c.PostForm(next.String(), values)
	}
	if err != nil {
		// Transport errors name the URL: record the operation only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return recordBrowser(fmt.Sprintf("error=%v", err))
	}
	return recordBrowser("error=too many forms")
}

func readPage(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b)
}

var (
	formRE  = regexp.MustCompile(`(?is)<form[^>]*method="post"[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE = regexp.MustCompile(`(?i)<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"`)
	titleRE = regexp.MustCompile(`(?is)<title>(.*?)</title>`)
)

// pickForm returns the action and fields of the page's POST form whose
// action contains want.
func pickForm(page, want string) (string, url.Values, bool) {
	for _, m := range formRE.FindAllStringSubmatch(page, -1) {
		action := html.UnescapeString(m[1])
		if !strings.Contains(action, want) {
			continue
		}
		values := url.Values{}
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			values.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
		}
		return action, values, true
	}
	return "", nil, false
}

func pageTitle(page string) string {
	if m := titleRE.FindStringSubmatch(page); m != nil {
		return strings.Join(strings.Fields(html.UnescapeString(m[1])), " ")
	}
	return "(none)"
}

// recordBrowser appends line to $WORK/browser.log in one write, so that
// browsers running at the same time do not mix their lines.
func recordBrowser(line string) int {
	dir := os.Getenv("WORK")
	if dir == "" {
		fmt.Fprintln(os.Stderr, line)
		return 0
	}
	f, err := os.OpenFile(filepath.Join(dir, browserLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// waitFor calls check until it returns nil or d has passed, and returns
// its last error.
func waitFor(d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// cmdWaitState: "waitstate ACCOUNT STATE" waits until the agent reports
// ACCOUNT in STATE (e.g. signed-in, signed-out, needs-login).
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitstate ACCOUNT STATE")
	}
	cl := ipc.NewClient(ts.Getenv("NCAGENT_SOCKET"))
	err := waitFor(scriptWait, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		for _, a := range st.Accounts {
			if a.Name == args[0] {
				if a.State != args[1] {
					return fmt.Errorf("got state %q, want %q", a.State, args[1])
				}
				return nil
			}
		}
		return fmt.Errorf("no account %q in the agent's status", args[0])
	})
	if err != nil {
		ts.Fatalf("waitstate %s: %v", args[0], err)
	}
}

// cmdWaitLog: "waitlog REGEXP FILE" waits until FILE exists and matches
// REGEXP (a log a background process writes).
func cmdWaitLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitlog REGEXP FILE")
	}
	re, err := regexp.Compile(`(?m)` + args[0])
	if err != nil {
		ts.Fatalf("waitlog: %v", err)
	}
	path := ts.MkAbs(args[1])
	err = waitFor(scriptWait, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !re.Match(b) {
			return fmt.Errorf("no match for %q", args[0])
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("waitlog %s: %v", args[1], err)
	}
}

// cmdWaitBrowser: "waitbrowser N" waits until the fake browser recorded N
// pages in $WORK/browser.log, and fails when it recorded more.
func cmdWaitBrowser(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitbrowser N")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("waitbrowser: %v", err)
	}
	lines := func() int {
		b, _ := os.ReadFile(ts.MkAbs(browserLog))
		return strings.Count(string(b), "\n")
	}
	waitFor(scriptWait, func() error {
		if lines() < want {
			return errors.New("not yet")
		}
		return nil
	})
	if got := lines(); got != want {
		ts.Fatalf("browser pages: got %d, want %d", got, want)
	}
}

// cmdIntrospect: "introspect FILE [SCOPE...]" checks that FILE (e.g.
// stdout) holds an access token the authorization server says is active,
// with exactly the given scopes when some are given. The token is
// remembered for secretfree and never printed.
func cmdIntrospect(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: introspect FILE [SCOPE...]")
	}
	w := worldOf(ts)
	tok := strings.TrimSpace(ts.ReadFile(args[0]))
	w.remember(tok)
	active, scopes, _ := w.idp.Introspect(tok)
	if !active {
		ts.Fatalf("introspect: the authorization server says the token in %s is not active", args[0])
	}
	if want := args[1:]; len(want) > 0 {
		slices.Sort(scopes)
		slices.Sort(want)
		if !slices.Equal(scopes, want) {
			ts.Fatalf("introspect: got scopes %q, want %q", scopes, want)
		}
	}
}

// cmdNCPassword: "ncpassword FILE" checks that FILE (e.g. the stdout of
// "ncagent exec -- env") sets NEXTCLOUD_PASSWORD to an app password the
// fake Nextcloud issued and still accepts. The value is never printed.
func cmdNCPassword(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ncpassword FILE")
	}
	w := worldOf(ts)
	for _, line := range strings.Split(ts.ReadFile(args[0]), "\n") {
		if v, ok := strings.CutPrefix(line, "NEXTCLOUD_PASSWORD="); ok {
			w.remember(v)
			if !w.nc.Valid(v) {
				ts.Fatalf("ncpassword: NEXTCLOUD_PASSWORD in %s is not a valid app password of the server", args[0])
			}
			return
		}
	}
	ts.Fatalf("ncpassword: no NEXTCLOUD_PASSWORD line in %s", args[0])
}

// cmdIdP drives and checks the script's authorization server:
//
//	idp deny [ERROR]           the next authorization fails (access_denied)
//	idp iss VALUE              authorization responses carry iss=VALUE
//	idp authorizations N       N authorization requests arrived
//	idp calls GRANT_TYPE N     N token requests of GRANT_TYPE arrived
func cmdIdP(ts *testscript.TestScript, neg bool, args []string) {
	idp := worldOf(ts).idp
	switch {
	case !neg && len(args) >= 1 && len(args) <= 2 && args[0] == "deny":
		idp.DenyNext(strings.Join(args[1:], ""))
	case !neg && len(args) == 2 && args[0] == "iss":
		idp.SetIssParam(args[1])
	case !neg && len(args) == 2 && args[0] == "authorizations":
		checkCount(ts, "authorizations", idp.Authorizations(), args[1])
	case !neg && len(args) == 3 && args[0] == "calls":
		checkCount(ts, "token requests "+args[1], idp.Calls(args[1]), args[2])
	case !neg && len(args) == 2 && args[0] == "confidential-secret":
		// The random secret of this run's confidential client, 0600 in
		// $WORK (a temporary directory), for --client-secret-file.
		worldOf(ts).remember(idp.ConfidentialSecret)
		if err := os.WriteFile(ts.MkAbs(args[1]), []byte(idp.ConfidentialSecret+"\n"), 0o600); err != nil {
			ts.Fatalf("idp confidential-secret: %v", err)
		}
	default:
		ts.Fatalf("usage: idp deny [ERROR] | iss VALUE | authorizations N | calls GRANT_TYPE N | confidential-secret FILE")
	}
}

// cmdNC drives and checks the script's fake Nextcloud:
//
//	nc fail-verify N           the next N credential checks answer 401
//	nc calls ENDPOINT N        N requests reached ENDPOINT (nctest.Endpoint*)
//	nc valid N                 the server accepts N app passwords
func cmdNC(ts *testscript.TestScript, neg bool, args []string) {
	nc := worldOf(ts).nc
	switch {
	case !neg && len(args) == 2 && args[0] == "fail-verify":
		n, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("nc fail-verify: %v", err)
		}
		nc.FailVerifications(n)
	case !neg && len(args) == 3 && args[0] == "calls":
		checkCount(ts, "nextcloud "+args[1]+" calls", nc.Calls(args[1]), args[2])
	case !neg && len(args) == 2 && args[0] == "valid":
		valid := 0
		for _, p := range nc.AppPasswords() {
			if nc.Valid(p) {
				valid++
			}
		}
		checkCount(ts, "valid app passwords", valid, args[1])
	default:
		ts.Fatalf("usage: nc fail-verify N | calls ENDPOINT N | valid N")
	}
}

func checkCount(ts *testscript.TestScript, what string, got int, wantArg string) {
	want, err := strconv.Atoi(wantArg)
	if err != nil {
		ts.Fatalf("%s: %v", what, err)
	}
	if got != want {
		ts.Fatalf("%s: got %d, want %d", what, got, want)
	}
}
