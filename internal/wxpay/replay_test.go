package wxpay

import (
	"strconv"
	"testing"
	"time"
)

// An answer is taken once while its signature can verify, from any call;
// another answer is not held up by it, and memory does not grow past two
// generations.
func TestAnswerLogTakesAnAnswerOnce(t *testing.T) {
	var l AnswerLog
	t0 := time.Unix(1_800_000_000, 0)
	if !l.First("sig-A", t0) || !l.First("sig-B", t0) {
		t.Fatal("a first answer is refused")
	}
	// Replayed up to the end of its window: the answer verifies for
	// MaxSkew either side of its timestamp, so up to 2×MaxSkew after.
	for _, after := range []time.Duration{0, time.Second, MaxSkew, 2*MaxSkew - time.Second} {
		if l.First("sig-A", t0.Add(after)) {
			t.Errorf("the same answer again %v later is taken", after)
		}
	}
	for i := range 1000 {
		l.First("sig-"+strconv.Itoa(i), t0.Add(5*MaxSkew))
	}
	if l.First("sig-7", t0.Add(5*MaxSkew)) {
		t.Error("an answer is taken twice in one generation")
	}
	if n := len(l.cur) + len(l.prev); n > 1000+2 {
		t.Errorf("the log holds %d signatures after its window moved on", n)
	}
}
