package outbox

import (
	"testing"
	"time"
)

func TestDefaultBackoffRetriesSoonThenAtMostEveryTenMinutes(t *testing.T) {
	if first := DefaultBackoff(0); first <= 0 || first > 10*time.Second {
		t.Errorf("first retry after %v, want within 10 s", first)
	}
	prev := time.Duration(0)
	for i := range 100 {
		d := DefaultBackoff(i)
		if d < prev || d > 10*time.Minute {
			t.Errorf("retry %d after %v (previous %v): want growing, at most 10 min", i, d, prev)
		}
		prev = d
	}
	if prev != 10*time.Minute {
		t.Errorf("late retries every %v, want 10 min", prev)
	}
}

// TestDefaultBackoffBridgesADeploy: an upstream down for a deploy (up to
// 10 minutes) gets the event within 30 s of coming back, so no gap between
// two attempts in an event's first 10 minutes may be longer than 20 s
// (plus the poll interval and one attempt's timeout).
func TestDefaultBackoffBridgesADeploy(t *testing.T) {
	at := time.Duration(0) // since the synchronous attempt failed
	for i := 0; at < 10*time.Minute; i++ {
		d := DefaultBackoff(i)
		if d > 20*time.Second {
			t.Fatalf("retry %d comes %v after the one before, %v into the outage: an upstream back in between waits longer than 20 s", i, d, at)
		}
		at += d
	}
}
