package wechatauth

import (
	"sync"

	"go.uber.org/zap"
)

// inFlight lets the requests a handler is serving finish with what its
// Cleanup gives back (the session store, the WeChat client). On a reload
// Caddy cleans up the old config while its requests still run: a login
// waiting on WeChat would find its Redis client closed and answer 503,
// with the user's code already spent. A nil *inFlight (a handler never
// provisioned) counts nothing and releases at once.
type inFlight struct {
	mu      sync.Mutex
	n       int
	pending func() error // close's release, run by the last request out
	log     *zap.Logger
}

// enter counts a request; leave must follow once it is answered.
func (f *inFlight) enter() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

// leave ends what enter began. The last request out of a closed handler
// runs its release in the background: the request's answer need not wait
// for a store to stop.
func (f *inFlight) leave() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.n--
	var release func() error
	if f.n == 0 {
		release, f.pending = f.pending, nil
	}
	log := f.log
	f.mu.Unlock()
	if release != nil {
		go func() {
			if err := release(); err != nil {
				log.Warn("releasing what a reloaded config held", zap.Error(err))
			}
		}()
	}
}

// close runs release at once when no request is being served, or leaves
// it to the last one (its error then goes to log).
func (f *inFlight) close(log *zap.Logger, release func() error) error {
	if f == nil {
		return release()
	}
	f.mu.Lock()
	if f.n > 0 {
		f.pending, f.log = release, log
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	return release()
}
