package wxpay

import (
	"strconv"
	"testing"
	"time"
)

// An answer is taken once while its signature can verify, from any call;
// another answer is not held up by it, and the log forgets what is past
// its window.
func TestAnswerLogTakesAnAnswerOnce(t *testing.T) {
	var l AnswerLog
	t0 := time.Unix(1_800_000_000, 0)
	body := []byte(`{"out_trade_no":"A","trade_state":"SUCCESS"}`)
	if !l.First("1800000000", "N1", body, t0) || !l.First("1800000000", "N2", body, t0) {
		t.Fatal("a first answer is refused")
	}
	// Taken again up to the end of its window: the answer verifies for
	// MaxSkew either side of its timestamp, so up to 2×MaxSkew after.
	for _, after := range []time.Duration{0, time.Second, MaxSkew, 2*MaxSkew - time.Second} {
		if l.First("1800000000", "N1", body, t0.Add(after)) {
			t.Errorf("the same answer again %v later is taken", after)
		}
	}
	for i := range 1000 {
		l.First("1800000300", "M"+strconv.Itoa(i), body, t0.Add(5*MaxSkew))
	}
	if l.First("1800000300", "M7", body, t0.Add(5*MaxSkew)) {
		t.Error("an answer is taken twice in one generation")
	}
	// Two windows later, the thousand answers are forgotten.
	l.First("1800001000", "X", body, t0.Add(10*MaxSkew))
	l.First("1800001500", "Y", body, t0.Add(15*MaxSkew))
	if n := len(l.cur) + len(l.prev); n != 2 {
		t.Errorf("the log holds %d answers after its window moved on twice, want 2", n)
	}
}
