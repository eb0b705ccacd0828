// Command render writes the system-wide files of the ncagent packages from
// the templates in package packaging: the systemd user units and the
// applications-menu launcher, all pointing at -bin. scripts/package runs it
// before nfpm.
//
// Usage:
//
//	go run ./packaging/render -out dist/build [-bin /usr/bin/ncagent]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ncagent/ncagent/packaging"
)

func main() {
	out := flag.String("out", "", "directory to write the rendered files into (required)")
	bin := flag.String("bin", "/usr/bin/ncagent", "absolute path of the installed ncagent binary")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "render: -out is required")
		os.Exit(2)
	}
	if err := render(*out, *bin); err != nil {
		fmt.Fprintf(os.Stderr, "render: %v\n", err)
		os.Exit(1)
	}
}

// render writes ncagent.service, ncagent.socket and ncagent.desktop (the
// launcher) into dir. The packaged files carry no "managed by ncagent
// autostart" marker: they belong to the package manager.
func render(dir, bin string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, name := range []string{packaging.ServiceTemplate, packaging.SocketTemplate, packaging.LauncherTemplate} {
		b, err := packaging.Render(name, packaging.Data{Executable: bin})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
