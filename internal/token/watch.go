package token

import (
	"context"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"go.uber.org/zap"
)

// Timing of generated keys. An instance picks up a key another one made
// when a token names a kid it does not know (at most once per
// keyReloadGap, so unknown kids cannot make it hammer the storage), and
// every keyWatchMax at the latest, sooner with a short key_rotation.
const (
	keyReloadGap = 250 * time.Millisecond
	keyWatchMax  = time.Minute
	keyWatchMin  = 100 * time.Millisecond
)

// NewWatch makes the watch of the generated ring g, run every every.
func NewWatch(g *keyring.Generated, every time.Duration, log *zap.Logger) *Watch {
	return &Watch{g: g, every: every, log: log}
}

// Watch keeps a codec's generated keys current: it rotates them when
// due and picks up keys other instances made.
type Watch struct {
	g        *keyring.Generated
	tc       *Codec
	every    time.Duration
	log      *zap.Logger
	onChange func(*keyring.Ring) // called with every new ring, under mu

	mu   sync.Mutex
	last time.Time // last reload for an unknown kid

	stop context.CancelFunc
	done chan struct{}
}

func WatchEvery(rotation time.Duration) time.Duration {
	if rotation <= 0 {
		return keyWatchMax
	}
	return min(max(rotation/4, keyWatchMin), keyWatchMax)
}

// Start runs the watch for tc until stopWatch.
func (w *Watch) Start(tc *Codec, onChange func(*keyring.Ring)) {
	w.tc = tc
	w.onChange = onChange
	tc.reload = w.reload
	ctx, stop := context.WithCancel(context.Background())
	w.stop = stop
	w.done = make(chan struct{})
	go w.run(ctx)
}

func (w *Watch) Stop() {
	if w != nil && w.stop != nil {
		w.stop()
		<-w.done
	}
}

// run rotates the ring when due and applies what other instances changed.
func (w *Watch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sr, err := w.g.Current(opCtx, time.Now())
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("signing keys in Caddy's storage could not be read or rotated; the current ones stay in use", zap.Error(err))
			}
			continue
		}
		w.mu.Lock()
		w.apply(sr.Ring())
		w.mu.Unlock()
	}
}

// reload reads the ring again for a token whose kid the codec does not
// know, at most once per keyReloadGap. It returns the ring in force.
func (w *Watch) reload() *keyring.Ring {
	w.mu.Lock()
	defer w.mu.Unlock()
	if time.Since(w.last) < keyReloadGap {
		return w.tc.ring.Load()
	}
	w.last = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sr, err := w.g.Read(ctx)
	if err != nil {
		return nil
	}
	w.apply(sr.Ring())
	return w.tc.ring.Load()
}

// apply puts ring in force when it differs from the current one. w.mu is
// held.
func (w *Watch) apply(ring *keyring.Ring) {
	if ring.SameAs(w.tc.ring.Load()) {
		return
	}
	w.tc.ring.Store(ring)
	w.log.Info("signing keys changed", zap.String("signing_kid", ring.Signer().Kid), zap.Int("keys", len(ring.Keys)))
	if w.onChange != nil {
		w.onChange(ring)
	}
}
