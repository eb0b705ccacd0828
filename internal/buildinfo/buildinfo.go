// Package buildinfo holds what the linker stamps into an ncagent binary:
// its version and source commit. Every package that names the version (the
// User-Agent of IdP requests, the agent's status, ncagent version) reads it
// here, so a build sets it in one place:
//
//	go build -ldflags "-X github.com/ncagent/ncagent/internal/buildinfo.Version=1.2.3 -X github.com/ncagent/ncagent/internal/buildinfo.Commit=abc123" ./cmd/ncagent
package buildinfo

// Version is the ncagent version, set by the linker; "dev" otherwise.
var Version = "dev"

// Commit is the source commit, set by the linker; empty otherwise.
var Commit = ""

// UserAgent is the User-Agent ncagent sends: "ncagent/" + Version.
func UserAgent() string { return "ncagent/" + Version }
