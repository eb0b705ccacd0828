package proxy

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// envHelper makes the test binary act as a child program instead of
// running tests: see helperMain.
const envHelper = "NCAGENT_PROXY_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		os.Exit(helperMain(h))
	}
	os.Exit(m.Run())
}

// helperMain is a small basic-auth WebDAV client as an MCP server is one:
// it reads NEXTCLOUD_HOST, NEXTCLOUD_USERNAME and NEXTCLOUD_PASSWORD once
// at start.
//   - "poll N": a PROPFIND of the files root every second, N times; prints
//     "ok=… fail=…" and the first failure.
//   - "once": one PROPFIND; prints "status=…" or "error=…".
func helperMain(mode string) int {
	host, user, pass := os.Getenv("NEXTCLOUD_HOST"), os.Getenv("NEXTCLOUD_USERNAME"), os.Getenv("NEXTCLOUD_PASSWORD")
	root := host + "/remote.php/dav/files/" + user + "/"
	propfind := func() (int, error) {
		req, _ := http.NewRequest("PROPFIND", root, strings.NewReader(`<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getlastmodified/></d:prop></d:propfind>`))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Depth", "0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	name, arg, _ := strings.Cut(mode, " ")
	switch name {
	case "poll":
		var n int
		fmt.Sscan(arg, &n)
		ok, fail, first := 0, 0, ""
		for i := range n {
			if i > 0 {
				time.Sleep(time.Second)
			}
			st, err := propfind()
			switch {
			case err != nil:
				fail++
				first = cmpOr(first, err.Error())
			case st != http.StatusMultiStatus:
				fail++
				first = cmpOr(first, fmt.Sprintf("request %d: HTTP %d", i, st))
			default:
				ok++
			}
		}
		fmt.Printf("ok=%d fail=%d %s\n", ok, fail, first)
	case "once":
		st, err := propfind()
		if err != nil {
			fmt.Printf("error=%v\n", err)
			return 0
		}
		fmt.Printf("status=%d\n", st)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
