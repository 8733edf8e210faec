package wechatauth

import (
	"testing"
	"time"

	"go.uber.org/zap"
)

// A handler closed while it serves requests releases what it holds only
// once the last of them is answered; one serving none releases at once.
func TestInFlightReleasesAfterTheLastRequest(t *testing.T) {
	released := make(chan struct{}, 1)
	release := func() error { released <- struct{}{}; return nil }
	f := new(inFlight)
	f.enter()
	f.enter()
	if err := f.close(zap.NewNop(), release); err != nil {
		t.Fatal(err)
	}
	f.leave()
	select {
	case <-released:
		t.Fatal("released with a request still being served")
	case <-time.After(50 * time.Millisecond):
	}
	f.leave()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("not released after the last request")
	}

	idle := new(inFlight)
	idle.close(zap.NewNop(), release)
	select {
	case <-released:
	default:
		t.Fatal("a handler serving nothing did not release at once")
	}
}
