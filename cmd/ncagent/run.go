package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/ncagent/ncagent/agent"
	"github.com/ncagent/ncagent/internal/buildinfo"
	"github.com/ncagent/ncagent/ipc"
)

func init() {
	register(verb{name: "run", summary: "run the agent in the foreground", run: runAgent})
}

// trayRunner is a tray ready to show (a *ui.Tray): Run shows it on the
// calling goroutine until it stops, when ctx of newTray ends.
type trayRunner interface {
	Run()
	Stop()
}

// newTray prepares the tray of an agent; set by tray.go on platforms and
// builds that have one. quit stops the agent as SIGINT would (the tray's
// Quit item). An error (no graphical session) means a headless run.
var newTray func(ctx context.Context, a *agent.Agent, log *slog.Logger, quit func()) (trayRunner, error)

func runAgent(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "run", "", `Run the agent in the foreground: it owns every account's refresh chain and
serves tokens on the local socket until SIGINT or SIGTERM. With a graphical
session it also shows the tray icon, unless --headless.

A systemd socket-activated service passes the socket in LISTEN_FDS; the
agent then serves on it instead of creating its own.`)
	headless := fs.Bool("headless", false, "do not show the tray icon")
	socket := fs.String("socket", "", "socket path (default: $NCAGENT_SOCKET or the per-user default)")
	configPath := fs.String("config", "", "config file (default: $NCAGENT_CONFIG or the user config dir)")
	logLevel := fs.String("log-level", envOr(e, "NCAGENT_LOG_LEVEL", "info"), "log level: debug, info, warn or error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		errorf(e, "run takes no arguments: run ncagent run --help")
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		errorf(e, "bad --log-level %q: use debug, info, warn or error", *logLevel)
		return exitUsage
	}
	tuneDaemonGC(e.getenv)
	// The level is a LevelVar so that [agent] log_level applies live; a
	// level given by flag or environment wins over the config.
	lv := new(slog.LevelVar)
	lv.Set(level)
	log, sink := newAgentLogger(e.stderr, lv, logFlushDelay)
	defer sink.Close()
	hardenAgent(log)
	// fail prints a user-facing error after every record logged before it.
	fail := func(format string, a ...any) int {
		sink.Flush()
		errorf(e, format, a...)
		return exitError
	}
	cfgLevel := lv
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "log-level" {
			cfgLevel = nil
		}
	})
	if e.getenv("NCAGENT_LOG_LEVEL") != "" {
		cfgLevel = nil
	}

	if *configPath == "" {
		*configPath = e.getenv("NCAGENT_CONFIG")
	}
	if *configPath == "" {
		p, err := agent.ConfigPath()
		if err != nil {
			return fail("%v", err)
		}
		*configPath = p
	}

	ln, path, err := listen(e, *socket)
	if err != nil {
		if errors.Is(err, ipc.ErrAlreadyRunning) {
			if st, ok, _ := runningAgent(ctx, path); ok {
				return fail("an agent is already running on %s (pid %d): use it, or stop it with ncagent stop", path, st.PID)
			}
			return fail("an agent is already running on %s: use it, or stop it with ncagent stop", path)
		}
		return fail("listen on %s: %v", path, err)
	}

	service := envOr(e, "NCAGENT_KEYRING_SERVICE", "ncagent")
	a, err := agent.New(agent.Options{
		ConfigPath: *configPath,
		// The keychain, or the age file store, as [agent] store says.
		KeychainService: service,
		Logger:          log,
		LogLevel:        cfgLevel,
		Socket:          path,
		Idle:            agentIdle(log),
	})
	if err != nil {
		ln.Close()
		return fail("%v", err)
	}
	log.Info("agent started", "version", buildinfo.Version, "pid", os.Getpid(), "socket", path, "config", *configPath)

	ctx, quit := context.WithCancel(ctx)
	defer quit()
	var tray trayRunner
	switch {
	case *headless:
		log.Debug("tray not started", "reason", "--headless")
	case newTray != nil:
		t, err := newTray(ctx, a, log, quit)
		if err != nil {
			log.Info("tray not started", "reason", err.Error())
		} else {
			tray = t
		}
	}
	// What the start-up logged is out before the first client is answered.
	sink.Flush()
	if tray != nil {
		log.Info("tray started")
		err = runWithTray(ctx, quit, tray, func() error { return a.Run(ctx, ln) })
	} else {
		err = a.Run(ctx, ln)
	}
	a.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fail("%v", err)
	}
	log.Info("agent stopped")
	return exitOK
}

// runWithTray runs serve on a goroutine of its own and the tray on this
// one, which for ncagent run is the main goroutine on the process's main
// thread (see init in main.go): macOS shows a menu bar item only from
// there. When serve ends it stops the tray (quit ends ctx); when the tray's
// Quit item or a signal ends ctx, serve ends too. It returns serve's error
// once both are done.
func runWithTray(ctx context.Context, quit func(), tray trayRunner, serve func() error) error {
	served := make(chan error, 1)
	go func() {
		served <- serve()
		quit() // the agent stopped on its own: take the icon away
	}()
	tray.Run() // returns once ctx ended and the icon is gone
	return <-served
}

// listen returns the socket-activated listener when systemd passed one, or
// a new socket at the configured path.
func listen(e *env, socket string) (net.Listener, string, error) {
	if ln, ok, err := ipc.ListenActivated(); err != nil {
		return nil, "socket activation", err
	} else if ok {
		return ln, ln.Addr().String(), nil
	}
	path := socket
	if path == "" {
		path = e.getenv("NCAGENT_SOCKET")
	}
	if path == "" {
		p, err := ipc.SocketPath()
		if err != nil {
			return nil, "", err
		}
		path = p
	}
	ln, err := ipc.Listen(path)
	return ln, path, err
}

func envOr(e *env, key, def string) string {
	if v := strings.TrimSpace(e.getenv(key)); v != "" {
		return v
	}
	return def
}

// socketPathVerb prints where clients find the agent.
func runSocketPath(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet(e, "socket-path", "", "Print the path of the agent socket (or named pipe) that clients use.")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	p := e.getenv("NCAGENT_SOCKET")
	if p == "" {
		var err error
		if p, err = ipc.SocketPath(); err != nil {
			errorf(e, "%v", err)
			return exitError
		}
	}
	fmt.Fprintln(e.stdout, p)
	return exitOK
}

func init() {
	register(verb{name: "socket-path", summary: "print the agent socket path", run: runSocketPath})
}
