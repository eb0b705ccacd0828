package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The agent's log is written behind: records are gathered in memory and
// written in one write at most logFlushDelay after the first of them, or
// once logFlushSize bytes are waiting, so that the record each token
// handed out costs a copy instead of a write(2) of its own on the path of
// the next request (journald or a log file is at the other end).
// Warnings and errors are written before their Handle returns, with
// whatever came before them; nothing is ever dropped (a writer finding the
// buffer full writes it itself); Close writes the rest. A crash of the
// process loses at most the info and debug records of the last
// logFlushDelay.
const (
	logFlushDelay = 100 * time.Millisecond
	logFlushSize  = 32 << 10
)

// logSink is the write-behind writer of the agent's log. It is safe for
// concurrent use.
type logSink struct {
	wmu   sync.Mutex // serialises writes to w, in the order of the records
	w     io.Writer
	delay time.Duration // logFlushDelay; tests lengthen it

	mu     sync.Mutex // guards buf, spare, armed
	buf    []byte     // records not yet written
	spare  []byte     // the buffer last written, reused
	armed  bool       // timer will flush
	timer  *time.Timer
	closed bool // Close ran: write through
}

func newLogSink(w io.Writer, delay time.Duration) *logSink {
	s := &logSink{w: w, delay: delay}
	s.timer = time.AfterFunc(time.Hour, func() { s.Flush() })
	s.timer.Stop()
	return s
}

// Write appends one record. It writes in the caller only when the buffer
// is full or the sink is closed.
func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return s.w.Write(p)
	}
	s.buf = append(s.buf, p...)
	full := len(s.buf) >= logFlushSize
	if !full && !s.armed {
		s.armed = true
		s.timer.Reset(s.delay)
	}
	s.mu.Unlock()
	if full {
		s.Flush()
	}
	return len(p), nil
}

// Flush writes every record written so far.
func (s *logSink) Flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	b := s.buf
	s.buf, s.spare = s.spare[:0], nil
	if s.armed {
		s.armed = false
		s.timer.Stop()
	}
	s.mu.Unlock()
	if len(b) == 0 {
		s.giveBack(b)
		return nil
	}
	_, err := s.w.Write(b)
	s.giveBack(b)
	return err
}

// giveBack keeps b for the next buffer unless a burst made it large: an
// idle agent holds no more than logFlushSize for its log.
func (s *logSink) giveBack(b []byte) {
	if cap(b) > 2*logFlushSize {
		return
	}
	s.mu.Lock()
	s.spare = b[:0]
	s.mu.Unlock()
}

// Close writes what is buffered; later records are written through.
func (s *logSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.Flush()
}

// flushHandler writes the sink out after each record at slog.LevelWarn or
// above, so that warnings and errors are not held back.
type flushHandler struct {
	slog.Handler
	sink *logSink
}

func (h flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.sink.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushHandler{h.Handler.WithAttrs(attrs), h.sink}
}

func (h flushHandler) WithGroup(name string) slog.Handler {
	return flushHandler{h.Handler.WithGroup(name), h.sink}
}

// newAgentLogger returns the agent's logger writing text records at level
// and above to w behind a logSink flushing after delay (logFlushDelay),
// which the caller closes last.
func newAgentLogger(w io.Writer, level slog.Leveler, delay time.Duration) (*slog.Logger, *logSink) {
	sink := newLogSink(w, delay)
	h := slog.NewTextHandler(sink, &slog.HandlerOptions{Level: level})
	return slog.New(flushHandler{h, sink}), sink
}
