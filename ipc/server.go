package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncagent/ncagent/internal/usersock"
)

// Server defaults; ServerOptions fields left zero take these.
const (
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultMaxConns     = 64

	// maxHeaderBytes bounds the request line and headers.
	maxHeaderBytes = 8 << 10
	// shutdownGrace bounds how long Run waits for in-flight requests.
	shutdownGrace = 5 * time.Second
	// releaseAfter is how long the server waits without a request after
	// serving some before it hands the heap's free memory back to the
	// OS (idleRelease).
	releaseAfter = 2 * time.Second
)

// ServerOptions configure a Server. Zero values take the defaults.
type ServerOptions struct {
	// Logger receives warnings about refused peers, backend errors and one
	// info record per credential handed out (metadata only, never a token).
	// Nil means slog.Default().
	Logger *slog.Logger
	// ReadTimeout bounds reading one request, headers and body; a client
	// that sends half a request and stalls is cut off after it.
	ReadTimeout time.Duration
	// WriteTimeout bounds one request from the end of its headers to the
	// end of its response; handlers run with a context ending a little
	// before it. The login stream extends it per event.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests.
	IdleTimeout time.Duration
	// MaxConns caps concurrent connections (default 64). A connection over
	// the cap waits briefly for a slot, then is closed.
	MaxConns int
	// Socket is the path served, reported in status and logs.
	Socket string
	// Idle is called after a burst of requests, once none came for 2 s,
	// once per burst, to hand what the burst left back to the OS. Nil
	// means debug.FreeOSMemory.
	Idle func()
}

// Server serves wire protocol v1 to processes of the current user with
// net/http. Every accepted connection has its peer credentials checked
// before any byte is read or written (peerListener); a peer of another
// user, or whose credentials are unknown, is closed at once. After a
// burst of requests, once none came for 2 s, it calls ServerOptions.Idle
// (by default returning the heap's free memory to the OS), once per burst.
type Server struct {
	b    Backend
	log  *slog.Logger
	opts ServerOptions
	hs   *http.Server

	answers tokenAnswers // encoded token answers (answers.go)

	// Hooks, fixed at construction; tests replace them.
	peerCred func(net.Conn) (Peer, error)
	allow    func(Peer) error
	connWait time.Duration // how long a connection over MaxConns waits

	// shutdownCtx is cancelled when shutdown starts (Run's ctx done, or
	// Close); it ends login streams, which could otherwise hold shutdown
	// for their whole duration.
	shutdownCtx    context.Context
	shutdownCancel context.CancelFunc

	// Idle memory release (idleRelease): requests counts requests served,
	// releaseArmed says the timer is set, seen is requests when it was set.
	requests     atomic.Uint64
	releaseArmed atomic.Bool
	seen         atomic.Uint64
	releaseTimer *time.Timer
	releaseAfter time.Duration // releaseAfter; tests shorten it
	release      func()        // ServerOptions.Idle; tests count calls

	mu       sync.Mutex // guards ln, closed, closeErr
	ln       *peerListener
	closed   bool          // Close was called
	closeCh  chan struct{} // closed by Close
	closeErr error
}

// peerKey is the context key under which ConnContext stores the Peer.
type peerKey struct{}

// NewServer returns a Server handing requests to b. Call Run to serve.
func NewServer(b Backend, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	s := &Server{
		b:        b,
		log:      opts.Logger,
		opts:     opts,
		peerCred: peerCred,
		allow:    usersock.CheckSelf,
		connWait: time.Second,
		closeCh:  make(chan struct{}),
	}
	s.shutdownCtx, s.shutdownCancel = context.WithCancel(context.Background())
	s.releaseAfter, s.release = releaseAfter, opts.Idle
	if s.release == nil {
		s.release = debug.FreeOSMemory
	}
	s.releaseTimer = time.AfterFunc(time.Hour, s.idleRelease)
	s.releaseTimer.Stop()
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: opts.ReadTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if pc, ok := c.(*peerConn); ok {
				return context.WithValue(ctx, peerKey{}, pc.peer)
			}
			return ctx // no Peer: every handler refuses
		},
	}
	s.hs.RegisterOnShutdown(s.shutdownCancel)
	return s
}

// Run serves on ln until ctx is done or Close is called, then stops
// accepting, lets in-flight requests finish (at most 5 s; login streams
// are cancelled at once) and closes ln, which removes a socket file Listen
// created. Run returns nil after a shutdown and the error otherwise. Run
// must be called at most once.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	pl := &peerListener{Listener: ln, s: s, sem: make(chan struct{}, s.opts.MaxConns), done: make(chan struct{})}
	defer pl.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.ln = pl
	s.mu.Unlock()
	s.log.Debug("ipc: serving", "socket", s.opts.Socket, "max_conns", s.opts.MaxConns)

	served := make(chan error, 1)
	go func() { served <- s.hs.Serve(pl) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		s.shutdown()
		err = <-served
	case <-s.closeCh:
		err = <-served
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("ipc: serve %s: %w", s.opts.Socket, err)
	}
	return nil
}

// shutdown stops accepting, closes idle connections, and waits up to
// shutdownGrace for busy ones before closing them too.
func (s *Server) shutdown() {
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := s.hs.Shutdown(sctx); err != nil {
		s.log.Warn("ipc: shutdown: requests still running after grace period, closing", "err", err)
		s.Close()
	}
}

// Close stops the server at once: the listener and every connection are
// closed. It is safe to call more than once and concurrently with Run.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closeErr
	}
	s.closed = true
	s.shutdownCancel()
	s.releaseTimer.Stop()
	s.closeErr = s.hs.Close()
	close(s.closeCh)
	return s.closeErr
}

// served counts a request and arms the idle release if it is not armed.
func (s *Server) served() {
	s.requests.Add(1)
	if !s.releaseArmed.Load() && s.releaseArmed.CompareAndSwap(false, true) {
		s.releaseTimer.Reset(s.releaseAfter)
	}
}

// idleRelease runs releaseAfter after the first request of a burst: while
// requests keep coming it looks again later; once none came for
// releaseAfter it calls ServerOptions.Idle (by default returning the heap's free memory to the OS), once per
// burst. The agent is idle almost all the time, and what a burst of
// requests left in the heap is garbage: without this, the runtime's
// scavenger returns it over minutes, and the idle agent's RSS is that of
// its busiest moment (BENCHMARKS.md, issue 13).
func (s *Server) idleRelease() {
	if n := s.requests.Load(); n != s.seen.Load() {
		s.seen.Store(n)
		s.releaseTimer.Reset(s.releaseAfter)
		return
	}
	s.releaseArmed.Store(false)
	if s.shutdownCtx.Err() != nil {
		return
	}
	s.release()
	// A request that came in just now armed nothing while releaseArmed
	// was true; look once more.
	if s.requests.Load() != s.seen.Load() && s.releaseArmed.CompareAndSwap(false, true) {
		s.releaseTimer.Reset(s.releaseAfter)
	}
}

// peerCred is usersock.PeerCred with this package's prefix on its errors,
// which the refusal record logs.
func peerCred(c net.Conn) (Peer, error) {
	p, err := usersock.PeerCred(c)
	if err != nil {
		return p, fmt.Errorf("ipc: %w", err)
	}
	return p, nil
}

// peerListener checks the peer of each accepted connection before handing
// it to http.Server, and caps concurrent connections.
type peerListener struct {
	net.Listener
	s         *Server
	sem       chan struct{} // one token per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *peerListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := l.s.peerCred(c)
		if err == nil {
			err = l.s.allow(p)
		} else {
			p = Peer{UID: -1}
		}
		if err != nil {
			c.Close()
			l.s.log.Warn("ipc: refused connection", "peer_uid", p.UID, "peer_pid", p.PID, "peer_exe", p.Exe, "err", err)
			continue
		}
		if !l.acquire() {
			c.Close()
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			l.s.log.Warn("ipc: refused connection: too many connections", "max_conns", cap(l.sem), "peer_pid", p.PID, "peer_exe", p.Exe)
			continue
		}
		return &peerConn{Conn: c, peer: p, release: l.release}, nil
	}
}

// acquire takes a connection slot, waiting up to connWait.
func (l *peerListener) acquire() bool {
	select {
	case l.sem <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(l.s.connWait)
	defer t.Stop()
	select {
	case l.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-l.done:
		return false
	}
}

func (l *peerListener) release() { <-l.sem }

// open returns the number of open connections.
func (l *peerListener) open() int { return len(l.sem) }

// peerConn is an accepted connection whose peer passed the check.
type peerConn struct {
	net.Conn
	peer      Peer
	release   func()
	closeOnce sync.Once
}

func (c *peerConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}
