// Package packaging starts ncagent at login and describes how it is installed
// as a native package.
//
// It holds the one source of truth for every file ncagent installs beside
// its binary: the systemd user units, the XDG autostart entry, the
// applications-menu launcher and the launchd LaunchAgent. They are
// text/template files embedded in the binary, rendered by Render both for
// `ncagent autostart` (per-user files pointing at the running binary) and
// for the .deb and .rpm packages (system files pointing at /usr/bin/ncagent,
// see packaging/render and scripts/package).
//
// # Start at login
//
// Enable, Disable and Status manage per-user entries only; nothing here is
// system-wide or needs root.
//
//   - Linux: a user socket unit ncagent.socket (ListenStream
//     %t/ncagent/agent.sock, the agent's default socket path) and a user
//     service ncagent.service (ExecStart=<binary> run) under
//     $XDG_CONFIG_HOME/systemd/user, enabled with
//     `systemctl --user enable --now ncagent.socket` when a user manager is
//     reachable; plus an XDG autostart entry
//     $XDG_CONFIG_HOME/autostart/ncagent.desktop.
//   - macOS: the LaunchAgent ~/Library/LaunchAgents/org.ncagent.agent.plist,
//     loaded with `launchctl bootstrap gui/<uid>`.
//   - Windows: the value ncagent under
//     HKCU\Software\Microsoft\Windows\CurrentVersion\Run.
//
// Files written by Enable carry the marker "managed by ncagent autostart"
// (a comment; the desktop entry also has X-Ncagent-Managed=true). Disable
// removes only files with the marker and leaves any other file alone.
//
// # Exactly one agent owns the socket (Linux)
//
// The tray needs the graphical session; a socket-activated service may have
// been started before it (by a script over SSH, by lingering), without
// DISPLAY or WAYLAND_DISPLAY. The two combine this way:
//
//   - ncagent.socket owns agent.sock whenever it is active. The service is
//     the only agent then; it starts on the first connection.
//   - The autostart entry (and the menu launcher) run
//     `ncagent autostart session`, which never listens itself while
//     ncagent.socket is active. It imports the session's display variables
//     into the systemd user manager, then starts ncagent.service when it is
//     not running, or restarts it when the running agent has no display or a
//     different one (read from /proc/<pid>/environ), so the one agent gains
//     its tray. The socket stays open across the restart: clients queue
//     rather than fail.
//   - Only when ncagent.socket is not active (no systemd, no user manager,
//     the user disabled it) does `ncagent autostart session` run the agent in
//     the session itself; the agent's own stale-socket check (a live agent
//     answering) keeps a second one from starting.
//
// See Session.
package packaging

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"text/template"
)

// Names of the embedded templates, as passed to Render.
const (
	ServiceTemplate     = "ncagent.service"           // systemd user service
	SocketTemplate      = "ncagent.socket"            // systemd user socket
	AutostartTemplate   = "ncagent-autostart.desktop" // XDG autostart entry, installed as ncagent.desktop
	LauncherTemplate    = "ncagent.desktop"           // applications-menu launcher
	LaunchAgentTemplate = "org.ncagent.agent.plist"   // launchd LaunchAgent
)

// LaunchAgentLabel is the launchd label of the LaunchAgent.
const LaunchAgentLabel = "org.ncagent.agent"

// ManagedMarker is the text every file written by Enable contains. A file
// without it was not written by ncagent and is never changed or removed.
const ManagedMarker = "managed by ncagent autostart"

// ErrUnsupported is returned on platforms with no start-at-login mechanism.
var ErrUnsupported = errors.New("autostart: not supported on this platform")

//go:embed templates/*
var templateFS embed.FS

var templates = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"systemdExec":   systemdExecArg,
		"systemdPath":   systemdPathArg,
		"desktopExec":   desktopExecArg,
		"desktopString": desktopString,
		"xml":           xmlText,
	}).Option("missingkey=error").ParseFS(templateFS, "templates/*"))
})

// Data is what the templates are rendered with.
type Data struct {
	// Executable is the absolute path of the ncagent binary the entries
	// start. It must not contain control characters.
	Executable string
	// Managed adds the ManagedMarker (per-user files written by Enable).
	// Packaged system files are rendered without it.
	Managed bool
	// LogPath is where launchd sends the agent's output (LaunchAgent only).
	LogPath string
}

// Templates returns the names of all templates, sorted.
func Templates() []string {
	return []string{AutostartTemplate, LauncherTemplate, ServiceTemplate, SocketTemplate, LaunchAgentTemplate}
}

// Render renders the named template with d. It fails when d.Executable is
// not an absolute slash-separated or Windows path, or contains a control
// character, so a rendered file is never ambiguous.
func Render(name string, d Data) ([]byte, error) {
	if err := checkPath(d.Executable); err != nil {
		return nil, fmt.Errorf("render %s: executable: %w", name, err)
	}
	if name == LaunchAgentTemplate {
		if err := checkPath(d.LogPath); err != nil {
			return nil, fmt.Errorf("render %s: log path: %w", name, err)
		}
	}
	t := templates().Lookup(name)
	if t == nil {
		return nil, fmt.Errorf("render %s: no such template", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if !path.IsAbs(p) && !isWindowsAbs(p) {
		return fmt.Errorf("%q is not absolute", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q contains a control character", p)
		}
	}
	return nil
}

func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') &&
		(p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z')
}

// systemdExecArg quotes one argument of ExecStart= (systemd.service(5),
// "Command lines"): "%" specifiers and "$" variable expansion are escaped
// by doubling, and an argument with white space or quotes is double-quoted
// with C-style escapes.
func systemdExecArg(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// systemdPathArg escapes a path for a Condition*= setting, which takes the
// rest of the line as the path and expands specifiers (systemd.unit(5),
// "Specifiers"): only '%' needs escaping.
func systemdPathArg(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// parseSystemdExec returns the program of an ExecStart= value: the first
// argument, with the "-@:+!" prefixes, quoting and %%/$$ escapes undone.
func parseSystemdExec(v string) string {
	v = strings.TrimLeft(strings.TrimSpace(v), "-@:+!")
	var b strings.Builder
	if strings.HasPrefix(v, `"`) {
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v) {
				i++
				b.WriteByte(v[i])
				continue
			}
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
	} else {
		f := strings.Fields(v)
		if len(f) == 0 {
			return ""
		}
		b.WriteString(f[0])
	}
	return strings.NewReplacer("%%", "%", "$$", "$").Replace(b.String())
}

// desktopReserved are the characters that force quoting of an Exec argument
// (Desktop Entry Specification, "The Exec key":
// https://specifications.freedesktop.org/desktop-entry-spec/latest/exec-variables.html).
const desktopReserved = " \t\n\"'\\><~|&;$*?#()`"

// desktopExecArg quotes one argument of a desktop entry's Exec key. Per the
// specification: "%" is written "%%"; an argument containing a reserved
// character is enclosed in double quotes, inside which `"`, "`", "$" and
// "\" are backslash-escaped; and since Exec is itself a string value, every
// backslash is escaped once more.
func desktopExecArg(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, desktopReserved) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if strings.ContainsRune("\"`$\\", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return desktopString(b.String())
}

// desktopString escapes a value of type string in a desktop entry
// ("\\" for a backslash; control characters are refused by Render).
func desktopString(s string) string {
	return strings.ReplaceAll(s, `\`, `\\`)
}

// parseDesktopExec returns the program of an Exec value: the first argument
// with both levels of escaping undone.
func parseDesktopExec(v string) string {
	// Undo the string-level escapes first.
	var s strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			switch v[i] {
			case 's':
				s.WriteByte(' ')
			case 't':
				s.WriteByte('\t')
			case 'n':
				s.WriteByte('\n')
			case 'r':
				s.WriteByte('\r')
			default:
				s.WriteByte(v[i])
			}
			continue
		}
		s.WriteByte(v[i])
	}
	u := strings.TrimSpace(s.String())
	var b strings.Builder
	if strings.HasPrefix(u, `"`) {
		for i := 1; i < len(u); i++ {
			c := u[i]
			if c == '\\' && i+1 < len(u) {
				i++
				b.WriteByte(u[i])
				continue
			}
			if c == '"' {
				break
			}
			b.WriteByte(c)
		}
	} else {
		f := strings.Fields(u)
		if len(f) == 0 {
			return ""
		}
		b.WriteString(f[0])
	}
	return strings.ReplaceAll(b.String(), "%%", "%")
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
