package session

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// Logouts whose tokens have all expired are forgotten, so the set does not
// grow with every logout ever made; a logout still in force never is.
func TestRevocationsForgetOnlyExpiredLogouts(t *testing.T) {
	r := NewRevocations(nil)
	now := time.Now()
	r.Add("live", now.Add(time.Hour))
	for i := range 5000 {
		r.Add("gone-"+strconv.Itoa(i), now.Add(-time.Second))
	}
	if !r.Has("live", now) {
		t.Fatal("a logout in force was dropped by a sweep")
	}
	held := 0
	r.Each(func(string, time.Time) { held++ })
	if held > 200 {
		t.Fatalf("%d Revocations held after 5,000 expired ones: expired ones are not swept", held)
	}
	r.mu.Lock()
	n := r.n
	r.mu.Unlock()
	if n != held {
		t.Fatalf("count says %d Revocations, the set holds %d", n, held)
	}
}

// A second logout of the same session can only extend its revocation.
func TestRevocationKeepsTheLatestUntil(t *testing.T) {
	r := NewRevocations(nil)
	now := time.Now()
	r.Add("s", now.Add(2*time.Hour))
	r.Add("s", now.Add(time.Minute))
	if !r.Has("s", now.Add(time.Hour)) {
		t.Fatal("an earlier revocation shortened a later one: the token works again")
	}
	if r.Has("s", now.Add(3*time.Hour)) {
		t.Fatal("revoked past its until")
	}
	if r.Has("other", now) {
		t.Fatal("a session never logged out is revoked")
	}
}

// Proxied requests check revocations while logouts add them (run with
// -race): every logout is seen once add returns.
func TestRevocationsConcurrentReadersSeeEveryLogout(t *testing.T) {
	r := NewRevocations(nil)
	until := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					r.Has("s-1", time.Now())
				}
			}
		})
	}
	for i := range 2000 {
		sid := "s-" + strconv.Itoa(i)
		r.Add(sid, until)
		if !r.Has(sid, time.Now()) {
			close(stop)
			t.Fatalf("logout of %s not seen right after it", sid)
		}
	}
	close(stop)
	wg.Wait()
}
