package wechatauth

import (
	"context"
	"fmt"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

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
	every := token.WatchEvery(rotation)
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
	h.keyWatch = token.NewWatch(g, every, h.logger)
	return sr.Ring(), nil
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
	addKeys(h.tokens.Ring())
	if h.keyWatch != nil {
		h.keyWatch.Start(h.tokens, addKeys)
	}
	return nil
}
