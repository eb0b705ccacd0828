package testutil

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	t.Run("stop", func(t *testing.T) {
		r := &recorder{TB: t}
		started := make(chan struct{})
		stop := Serve(r, time.Second, func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		})
		<-started
		if err := stop(); err != nil {
			t.Errorf("stop: got %v, want nil", err)
		}
		if err := stop(); err != nil {
			t.Errorf("second stop: got %v, want nil", err)
		}
		r.cleanup()
		if got := r.failures(); len(got) != 0 {
			t.Errorf("failures: got %q, want none", got)
		}
	})
	t.Run("error at cleanup", func(t *testing.T) {
		r := &recorder{TB: t}
		Serve(r, time.Second, func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		r.cleanup()
		if got := r.failures(); len(got) != 1 || !strings.Contains(got[0], "context canceled") {
			t.Errorf("failures: got %q, want the run's error", got)
		}
	})
	t.Run("does not return", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		r := &recorder{TB: t}
		stop := Serve(r, 30*time.Millisecond, func(context.Context) error {
			<-release
			return errors.New("late")
		})
		if err := stop(); err == nil || !strings.Contains(err.Error(), "did not return within 30ms") {
			t.Errorf("stop: got %v, want an error saying it did not return", err)
		}
	})
}
