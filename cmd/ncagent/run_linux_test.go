package main

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadTray is a trayRunner that records the OS thread Run runs on and
// stops, as ui.Tray does, when ctx ends (Stop is ui.Tray's own business).
type threadTray struct {
	ctx    context.Context
	tid    atomic.Int64
	quitOn time.Duration // > 0: choose Quit from the menu after this long
	quit   func()
}

func (f *threadTray) Run() {
	f.tid.Store(int64(unix.Gettid()))
	if f.quitOn > 0 {
		time.AfterFunc(f.quitOn, f.quit)
	}
	<-f.ctx.Done()
}

func (f *threadTray) Stop() {}

// TestRunWithTray: the tray runs on the calling goroutine's OS thread (in
// ncagent run, the process's main thread, which init in main.go locks to
// the main goroutine), the agent on another; either ending ends both.
func TestRunWithTray(t *testing.T) {
	serveErr := errors.New("socket gone")
	tests := []struct {
		name    string
		serve   func(ctx context.Context) error
		quitOn  time.Duration
		wantErr error
	}{
		{name: "the agent stops: the tray goes", serve: func(context.Context) error { return serveErr }, wantErr: serveErr},
		{name: "Quit in the tray: the agent stops", quitOn: 10 * time.Millisecond,
			serve: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.LockOSThread() // this goroutine plays main: no other runs on its thread
			defer runtime.UnlockOSThread()
			ctx, quit := context.WithCancel(context.Background())
			defer quit()
			tray := &threadTray{ctx: ctx, quitOn: tt.quitOn, quit: quit}
			var serveTID atomic.Int64
			done := make(chan error, 1)
			go func() { // the test's own watchdog runs elsewhere
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					panic("runWithTray did not return")
				}
			}()
			err := runWithTray(ctx, quit, tray, func() error {
				serveTID.Store(int64(unix.Gettid()))
				return tt.serve(ctx)
			})
			done <- err
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("runWithTray: got %v, want %v", err, tt.wantErr)
			}
			me := int64(unix.Gettid())
			if got := tray.tid.Load(); got != me {
				t.Errorf("tray ran on thread %d, want the caller's %d", got, me)
			}
			if got := serveTID.Load(); got == me || got == 0 {
				t.Errorf("agent served on thread %d, want one other than the tray's %d", got, me)
			}
		})
	}
}
