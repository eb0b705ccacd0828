//go:build windows

package agent

// opener returns the URL protocol handler, which opens the default browser
// without going through cmd.exe (whose "start" would interpret & and ^ in
// the URL).
func opener(rawURL string) (string, []string, error) {
	return "rundll32", []string{"url.dll,FileProtocolHandler", rawURL}, nil
}
