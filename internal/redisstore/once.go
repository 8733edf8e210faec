package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrOnceExists is PutOnce's answer for a key already stored.
var ErrOnceExists = errors.New("redisstore: key already stored")

// onceKey is the Redis key of a one-time value (a web login's state, a
// web-view handoff ticket).
func (r *Store) onceKey(key string) string { return r.oncePrefix + key }

// PutOnce stores a one-time value for ttl, unless key is live: every
// instance sharing the Redis can then Take it, so a login begun on one
// instance finishes on any other.
func (r *Store) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	ok, err := r.client.SetNX(ctx, r.onceKey(key), value, ttl).Result()
	switch {
	case err != nil:
		return r.storeDown("SET NX", err)
	case !ok:
		return ErrOnceExists
	}
	return nil
}

// Take returns a one-time value and deletes it in one transaction: of two
// instances taking the same key at once, one gets it.
func (r *Store) Take(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	k := r.onceKey(key)
	var get *redis.StringCmd
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, k)
		p.Del(ctx, k)
		return nil
	})
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, r.storeDown("GET+DEL", err)
	}
	b, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.storeDown("GET", err)
	}
	return b, true, nil
}
