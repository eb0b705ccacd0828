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

// openerPrefixes are kept too: base dirs and session (XDG_), locale (LC_),
// and the toolkits' and browsers' own switches (GDK_BACKEND,
// MOZ_ENABLE_WAYLAND, QT_QPA_PLATFORM…).
var openerPrefixes = []string{"XDG_", "LC_", "GTK_", "GDK_", "QT_", "MOZ_"}

// openerEnv is the part of environ (KEY=value entries) a browser opener
// gets: openerKeep, openerPrefixes, and the names the user lists,
// separated by spaces or commas, in NCAGENT_OPENER_ENV. A name that may
// hold a credential (CredentialVar) is never passed, listed or not.
func openerEnv(environ []string) []string {
	extra := map[string]bool{}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "NCAGENT_OPENER_ENV="); ok {
			for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
				extra[n] = true
			}
		}
	}
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
		if CredentialVar(name) {
			continue
		}
		if openerKeep[name] || extra[k] || hasAnyPrefix(name, openerPrefixes) {
			out = append(out, kv)
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
