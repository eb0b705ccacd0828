package main

import (
	"context"
	"errors"
)

// errInterrupted is what a prompt returns when Ctrl-C ended it.
var errInterrupted = errors.New("interrupted")

// readInterruptible runs read, a blocking read of the terminal, and
// returns what it read, or errInterrupted as soon as ctx (main's signal
// context) is done: main catches SIGINT, so the read(2) of a terminal is
// not ended by Ctrl-C and would wait for a line. The reader is then left
// blocked; the process exits.
func readInterruptible(ctx context.Context, read func() ([]byte, error)) ([]byte, error) {
	type line struct {
		b   []byte
		err error
	}
	got := make(chan line, 1)
	go func() {
		b, err := read()
		got <- line{b, err}
	}()
	select {
	case l := <-got:
		return l.b, l.err
	case <-ctx.Done():
		return nil, errInterrupted
	}
}
