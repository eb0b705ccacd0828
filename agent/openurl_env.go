package agent

import (
	"runtime"
	"strings"
)

// openerKeep are the variables a browser opener needs to find the user's
// session, desktop and browser; every other variable of the agent (a
// NEXTCLOUD_PASSWORD it inherited, the NCAGENT_* of an exec session) stays
// out of the browser's environment.
var openerKeep = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true,
	// Linux and the BSDs: the display, the session bus, the desktop
	// xdg-open asks (it reads these to pick kde-open, gio, exo-open…).
	"DISPLAY": true, "WAYLAND_DISPLAY": true, "XAUTHORITY": true,
	"DBUS_SESSION_BUS_ADDRESS": true, "DESKTOP_SESSION": true, "BROWSER": true,
	"KDE_FULL_SESSION": true, "KDE_SESSION_VERSION": true, "GNOME_DESKTOP_SESSION_ID": true,
	"MATE_DESKTOP_SESSION_ID": true, "SESSION_MANAGER": true,
	// macOS.
	"__CF_USER_TEXT_ENCODING": true,
	// Windows.
	"SYSTEMROOT": true, "WINDIR": true, "COMSPEC": true, "PATHEXT": true,
	"USERPROFILE": true, "APPDATA": true, "LOCALAPPDATA": true, "TEMP": true, "TMP": true,
	"USERNAME": true, "USERDOMAIN": true, "HOMEDRIVE": true, "HOMEPATH": true,
	"PROGRAMFILES": true, "PROGRAMFILES(X86)": true, "PROGRAMDATA": true, "SYSTEMDRIVE": true,
}

// openerEnv is the part of environ (KEY=value entries) a browser opener
// gets: openerKeep, the XDG_* base and session variables and the LC_*
// locale.
func openerEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		name := k
		if runtime.GOOS == "windows" {
			name = strings.ToUpper(k)
		}
		if openerKeep[name] || strings.HasPrefix(name, "XDG_") || strings.HasPrefix(name, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}
