package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The agent's log is formatted and written behind: an info or debug
// record whose values are all plain (strings, numbers, booleans, times,
// durations) is kept as it is, and formatted and written with the others
// in one write at most logFlushDelay after the first of them, so that the
// record of each token handed out costs a copy on the path of the request
// instead of its formatting and a write(2) (journald or a log file is at
// the other end). A record at warn or above, or one holding any other
// value (an error, a LogValuer: what they say could change before a later
// formatting), is formatted and written before its Handle returns, after
// every record held before it, so the order of the log is the order of
// Handle calls. Nothing is ever dropped: past logFlushHeld records the
// flusher is woken, past logFlushMax the caller writes them itself. Close
// writes the rest. A crash of the process loses at most the info and
// debug records of the last logFlushDelay.
const (
	logFlushDelay = 100 * time.Millisecond
	logFlushHeld  = 128
	logFlushMax   = 1024
)

// logSink holds the records of the agent's log not yet written. It is
// safe for concurrent use.
type logSink struct {
	w     io.Writer
	delay time.Duration // logFlushDelay; tests lengthen it

	wmu sync.Mutex // held while formatting and writing: orders the output
	out []byte     // formatted records, under wmu (sinkOut appends)

	mu     sync.Mutex // guards held, spare, armed, closed
	held   []heldRecord
	spare  []heldRecord // the slice last written, reused
	armed  bool         // timer will flush
	timer  *time.Timer
	closed bool // Close ran: write through
}

// heldRecord is a record and the handler (with its attrs and groups)
// that formats it.
type heldRecord struct {
	h slog.Handler
	r slog.Record
}

func newLogSink(w io.Writer, delay time.Duration) *logSink {
	s := &logSink{w: w, delay: delay}
	s.timer = time.AfterFunc(time.Hour, func() { s.Flush() })
	s.timer.Stop()
	return s
}

// hold keeps r, to be formatted by h at the next flush. It reports false
// when the sink is closed (the caller writes r through).
func (s *logSink) hold(h slog.Handler, r slog.Record) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.held = append(s.held, heldRecord{h, r.Clone()})
	n := len(s.held)
	switch {
	case n == logFlushHeld:
		s.armed = true
		s.timer.Reset(0) // wake the flusher now
	case !s.armed:
		s.armed = true
		s.timer.Reset(s.delay)
	}
	s.mu.Unlock()
	if n >= logFlushMax {
		s.Flush()
	}
	return true
}

// Flush formats and writes every record held so far.
func (s *logSink) Flush() error { return s.write(context.Background(), nil, slog.Record{}) }

// write formats and writes the held records and then, when h is not nil,
// r, in one write.
func (s *logSink) write(ctx context.Context, h slog.Handler, r slog.Record) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	held := s.held
	s.held, s.spare = s.spare[:0], nil
	if s.armed {
		s.armed = false
		s.timer.Stop()
	}
	s.mu.Unlock()
	var err error
	for i := range held {
		if herr := held[i].h.Handle(ctx, held[i].r); err == nil {
			err = herr
		}
		held[i] = heldRecord{} // let the values go
	}
	if h != nil {
		if herr := h.Handle(ctx, r); err == nil {
			err = herr
		}
	}
	if len(s.out) > 0 {
		if _, werr := s.w.Write(s.out); err == nil {
			err = werr
		}
	}
	s.out = s.out[:0]
	if cap(s.out) > 64<<10 {
		s.out = nil // an idle agent keeps no burst's buffer
	}
	if cap(held) <= logFlushMax {
		s.mu.Lock()
		s.spare = held[:0]
		s.mu.Unlock()
	}
	return err
}

// Close writes what is held; later records are written through.
func (s *logSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.Flush()
}

// sinkOut is the writer of the text handler: it appends to the sink's
// output, which only write touches, with wmu held.
type sinkOut struct{ s *logSink }

func (o sinkOut) Write(p []byte) (int, error) {
	o.s.out = append(o.s.out, p...)
	return len(p), nil
}

// behindHandler hands plain info and debug records to the sink to be
// formatted later, and formats and writes any other record at once.
type behindHandler struct {
	slog.Handler // the text handler, writing to sinkOut
	sink         *logSink
}

func (h behindHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && plainRecord(r) && h.sink.hold(h.Handler, r) {
		return nil
	}
	return h.sink.write(ctx, h.Handler, r)
}

// plainRecord reports whether every value of r is one whose formatting
// cannot change later.
func plainRecord(r slog.Record) bool {
	plain := true
	r.Attrs(func(a slog.Attr) bool {
		plain = plainValue(a.Value)
		return plain
	})
	return plain
}

func plainValue(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindAny, slog.KindLogValuer:
		return false
	case slog.KindGroup:
		for _, a := range v.Group() {
			if !plainValue(a.Value) {
				return false
			}
		}
	}
	return true
}

func (h behindHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return behindHandler{h.Handler.WithAttrs(attrs), h.sink}
}

func (h behindHandler) WithGroup(name string) slog.Handler {
	return behindHandler{h.Handler.WithGroup(name), h.sink}
}

// newAgentLogger returns the agent's logger writing text records at level
// and above to w behind a logSink flushing after delay (logFlushDelay),
// which the caller closes last.
func newAgentLogger(w io.Writer, level slog.Leveler, delay time.Duration) (*slog.Logger, *logSink) {
	sink := newLogSink(w, delay)
	h := slog.NewTextHandler(sinkOut{sink}, &slog.HandlerOptions{Level: level})
	return slog.New(behindHandler{h, sink}), sink
}
