package testutil

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Serve runs serve in a goroutine, on a context of its own, until stop is
// called or the test ends: for a server's Run(ctx, ln) (an ipc.Server, an
// agent, a proxy) on a socket the test made.
//
// stop cancels that context and waits up to within for serve to return.
// It returns serve's error, or an error saying serve did not return in
// time; later calls return nil. At cleanup, a stop not yet called runs and
// fails t with its error, so that a test that need not stop the server
// early still sees it stop cleanly.
func Serve(t testing.TB, within time.Duration, serve func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	var once sync.Once
	stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
				if err != nil {
					err = fmt.Errorf("run: %w", err)
				}
			case <-time.After(within):
				err = fmt.Errorf("run did not return within %v of its cancel", within)
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}
