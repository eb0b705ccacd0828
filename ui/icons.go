package ui

import (
	"embed"
	"runtime"
)

// icons holds the tray icons drawn by ui/icongen: <state>.png for Linux and
// macOS, <state>.ico for Windows.
//
//go:embed icons/*.png icons/*.ico
var icons embed.FS

// iconBytes returns the icon for s in the format the platform's tray wants.
func iconBytes(s iconState) []byte {
	ext := ".png"
	if runtime.GOOS == "windows" {
		ext = ".ico"
	}
	b, err := icons.ReadFile("icons/" + s.String() + ext)
	if err != nil {
		panic("ui: missing embedded icon: " + err.Error()) // a build error, caught by TestIcons
	}
	return b
}
