//go:build darwin

package agent

// opener returns open(1), which hands the URL to the default browser.
func opener(rawURL string) (string, []string, error) {
	return "open", []string{rawURL}, nil
}
