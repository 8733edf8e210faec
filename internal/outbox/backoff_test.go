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
