//go:build linux || windows

package ui

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLibraryLogSaysNoHostOnce(t *testing.T) {
	var buf bytes.Buffer
	w := &libraryLog{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 3 {
		w.Write([]byte("2026/12/01 22:18:18 systray error: failed to register: The name org.kde.StatusNotifierWatcher was not provided by any .service files\n"))
	}
	w.Write([]byte("systray error: something else\n"))
	out := buf.String()
	if n := strings.Count(out, "no StatusNotifier host"); n != 1 {
		t.Errorf("no-host line: got %d, want 1 in\n%s", n, out)
	}
	if strings.Contains(out, "org.kde.StatusNotifierWatcher was not provided") {
		t.Errorf("the raw library error reached the log:\n%s", out)
	}
	if !strings.Contains(out, `level=WARN msg="tray: something else"`) {
		t.Errorf("other library lines: got\n%s", out)
	}
}
