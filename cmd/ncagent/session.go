package main

import "runtime"

// graphicalSession reports whether this command runs in a graphical
// session where an agent started on demand should show its tray: on Linux
// and the BSDs, a DISPLAY or WAYLAND_DISPLAY; macOS and Windows always
// have a desktop, but their trays are started by ncagent run only.
func graphicalSession(e *env) bool {
	switch runtime.GOOS {
	case "windows", "darwin":
		return false
	}
	return e.getenv("DISPLAY") != "" || e.getenv("WAYLAND_DISPLAY") != ""
}
