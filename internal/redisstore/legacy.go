package redisstore

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"strconv"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/redis/go-redis/v9"
)

// Versions before key rotation kept each signing key's data apart under
// wechat_auth:<ns>:, ns and the sealing key both derived from the signing
// key (HKDF). A store reads that layout for each of its signing keys too,
// so upgrading logs nobody out and no logout is forgotten: a session found
// there is copied to the current layout, and revocations found there are
// merged (and so written to the current list) and heard on the old
// channel, as an instance not yet upgraded publishes them.
type legacyLayout struct {
	sessionPrefix string
	revokedKey    string // also the pub/sub channel
	aead          cipher.AEAD
}

func legacyLayouts(ring *keyring.Ring) ([]legacyLayout, error) {
	out := make([]legacyLayout, 0, len(ring.Keys))
	for _, k := range ring.Keys {
		encKey, err := hkdf.Key(sha256.New, k.Secret, nil, hkdfSessionKey, 32)
		if err != nil {
			return nil, err
		}
		aead, err := newAEAD(encKey)
		if err != nil {
			return nil, err
		}
		prefix := "wechat_auth:" + Namespace(k.Secret) + ":"
		out = append(out, legacyLayout{sessionPrefix: prefix + "session:", revokedKey: prefix + "revoked", aead: aead})
	}
	return out, nil
}

// legacyChannels are the revocation channels of the old layouts.
func (r *Store) legacyChannels() []string {
	chans := make([]string, len(r.legacy))
	for i, l := range r.legacy {
		chans[i] = l.revokedKey
	}
	return chans
}

// legacyGet looks for a session in the old layouts, after it was not found
// in the current one, and copies one found there to the current layout.
func (r *Store) legacyGet(ctx context.Context, sid string) (*session.Session, time.Time, error) {
	if len(r.legacy) == 0 {
		return nil, time.Time{}, session.ErrNoSession
	}
	cmds, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range r.legacy {
			p.Get(ctx, l.sessionPrefix+sid)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, r.storeDown("GET", err)
	}
	for i, cmd := range cmds {
		b, err := cmd.(*redis.StringCmd).Bytes()
		if err != nil {
			continue
		}
		s, expires, err := openSealed(r.legacy[i].aead, sid, b)
		if err != nil {
			continue
		}
		if ttl := time.Until(expires); ttl > 0 {
			if sealed, err := r.seal(s, expires); err == nil {
				r.client.Set(ctx, r.sessionPrefix+sid, sealed, ttl)
			}
		}
		return s, expires, nil
	}
	return nil, time.Time{}, session.ErrNoSession
}

// legacyRevocations returns the revocations in force in the old layouts.
func (r *Store) legacyRevocations(ctx context.Context, now time.Time) ([]redis.Z, error) {
	var all []redis.Z
	for _, l := range r.legacy {
		zs, err := r.client.ZRangeByScoreWithScores(ctx, l.revokedKey, &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(now.UnixMilli(), 10),
			Max: "+inf",
		}).Result()
		if err != nil {
			return nil, err
		}
		all = append(all, zs...)
	}
	return all, nil
}
