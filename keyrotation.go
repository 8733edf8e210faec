package wechatauth

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddyserver/caddy/v2"
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

// keyWatch keeps a codec's generated keys current: it rotates them when
// due and picks up keys other instances made.
type keyWatch struct {
	g        *keyring.Generated
	tc       *tokenCodec
	every    time.Duration
	log      *zap.Logger
	onChange func(*keyring.Ring) // called with every new ring, under mu

	mu   sync.Mutex
	last time.Time // last reload for an unknown kid

	stop context.CancelFunc
	done chan struct{}
}

func watchEvery(rotation time.Duration) time.Duration {
	if rotation <= 0 {
		return keyWatchMax
	}
	return min(max(rotation/4, keyWatchMin), keyWatchMax)
}

// provisionKeys sets up the codec's keys: the configured ones, or the
// generated ring kept in Caddy's storage, which is then watched.
func (h *Handler) provisionKeys(ctx caddy.Context) (*keyring.Ring, error) {
	if h.SigningKey != "" {
		secrets := [][]byte{[]byte(h.SigningKey)}
		for _, k := range h.PreviousSigningKeys {
			secrets = append(secrets, []byte(k))
		}
		return keyring.New(secrets...), nil
	}
	name := keyring.SigningKeyName
	if h.Sandbox {
		name = keyring.SigningKeyNameSandbox
	}
	rotation := time.Duration(h.KeyRotation)
	every := watchEvery(rotation)
	g := &keyring.Generated{
		Storage:  ctx.Storage(),
		Name:     name,
		Rotation: rotation,
		// A token signed with a key just retired lives token_ttl; an
		// instance that has not read the ring again yet may still sign
		// with it for one watch interval more.
		Keep: time.Duration(h.TokenTTL) + 2*every + time.Minute,
		TTL:  time.Duration(h.TokenTTL),
	}
	sr, err := g.Current(ctx, time.Now())
	if err != nil {
		return nil, fmt.Errorf("wechat_auth: signing keys from Caddy's storage: %w", err)
	}
	h.keyWatch = &keyWatch{g: g, every: every, log: h.logger}
	return sr.Ring(), nil
}

// start runs the watch for tc until stopWatch.
func (w *keyWatch) start(tc *tokenCodec, onChange func(*keyring.Ring)) {
	w.tc = tc
	w.onChange = onChange
	tc.reload = w.reload
	ctx, stop := context.WithCancel(context.Background())
	w.stop = stop
	w.done = make(chan struct{})
	go w.run(ctx)
}

func (w *keyWatch) stopWatch() {
	if w != nil && w.stop != nil {
		w.stop()
		<-w.done
	}
}

// run rotates the ring when due and applies what other instances changed.
func (w *keyWatch) run(ctx context.Context) {
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
func (w *keyWatch) reload() *keyring.Ring {
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
func (w *keyWatch) apply(ring *keyring.Ring) {
	if ring.SameAs(w.tc.ring.Load()) {
		return
	}
	w.tc.ring.Store(ring)
	w.log.Info("signing keys changed", zap.String("signing_kid", ring.Signer().Kid), zap.Int("keys", len(ring.Keys)))
	if w.onChange != nil {
		w.onChange(ring)
	}
}

// keyedStore is a store that keeps a data key wrapped under each signing
// key (Redis): it must learn every new key, so that an instance holding
// only that key can still open the sessions.
type keyedStore interface {
	AddSigningKeys(ctx context.Context, ring *keyring.Ring) error
}

var _ keyedStore = (*redisstore.Store)(nil)

// watchKeys hands the keys to the store and starts the watch of generated
// keys.
func (h *Handler) watchKeys() error {
	if h.tokens == nil {
		return nil // a gateway on the memory store signs and seals nothing
	}
	ks, _ := h.store.(keyedStore)
	addKeys := func(ring *keyring.Ring) {
		if ks == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisstore.OpTimeout)
		defer cancel()
		if err := ks.AddSigningKeys(ctx, ring); err != nil {
			h.logger.Warn("the session store's data key could not be wrapped under the new signing key; it is tried again when the keys next change or Caddy restarts", zap.Error(err))
		}
	}
	addKeys(h.tokens.ring.Load())
	if h.keyWatch != nil {
		h.keyWatch.start(h.tokens, addKeys)
	}
	return nil
}
