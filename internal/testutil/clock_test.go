package testutil

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now: got %v, want %v", got, start)
	}
	c.Advance(time.Minute)
	if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
		t.Errorf("after Advance: got %v, want %v", got, want)
	}
	if err := c.Sleep(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	c.Sleep(context.Background(), time.Second)
	if got, want := c.Now(), start.Add(time.Minute+6*time.Second); !got.Equal(want) {
		t.Errorf("after Sleep: got %v, want %v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a done context: got %v, want context.Canceled", err)
	}
	if got, want := c.Slept(), []time.Duration{5 * time.Second, time.Second}; !slices.Equal(got, want) {
		t.Errorf("Slept: got %v, want %v", got, want)
	}
}
