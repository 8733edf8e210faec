package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// carriedPrefix keeps in Caddy's storage, per Redis deployment (its data
// key's namespace), when CarryMemoryStore last carried all of this
// storage's user records into it. A record changed since is carried
// again; an older one is not: Redis may have superseded it (a ban lifted
// there), and forgotten that lift after its tombstone.
const carriedPrefix = "wechat_auth/carried_to_redis"

// carryTimeout bounds one carry; what it could not write is queued, or
// carried at the next start.
const carryTimeout = 10 * time.Minute

// CarryMemoryStore carries into Redis, in the background, what the memory
// store kept in storage and still matters: the users' cut-offs and bans
// (lifts included), then the logouts no token has outlived and the token
// horizon. A deployment that moves from the memory store to Redis thus
// keeps them: without this, a token logged out before the move would
// verify again, and a banned user log in. Each user record is merged with
// what Redis holds, as any other write, and holds on this instance as soon
// as it is read. The channel gets the carry's outcome (also logged).
func (r *Store) CarryMemoryStore(storage certmagic.Storage) <-chan error {
	out := make(chan error, 1)
	if storage == nil {
		out <- nil
		return out
	}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		ctx, cancel := context.WithTimeout(r.bg, carryTimeout)
		defer cancel()
		start := time.Now()
		err := errors.Join(r.carryUsers(ctx, storage, start), r.carryLogouts(ctx, storage, start))
		if err != nil {
			r.log.Warn("could not carry all the memory store's user records and logouts (kept in Caddy's storage) into Redis; the rest is carried at the next start", zap.Error(err))
		}
		out <- err
	}()
	return out
}

// carryUsers carries the user records changed since the last complete
// carry, and records this one when every record reached Redis.
func (r *Store) carryUsers(ctx context.Context, storage certmagic.Storage, start time.Time) error {
	marker := path.Join(carriedPrefix, r.dataKey.NS)
	var since time.Time
	switch b, err := storage.Load(ctx, marker); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		// Carrying everything again could bring back a ban Redis has
		// lifted and since forgotten.
		return fmt.Errorf("read %s: %w", marker, err)
	default:
		if err := since.UnmarshalText(b); err != nil {
			return fmt.Errorf("read %s: %w", marker, err)
		}
	}
	recs, err := session.ReadUserRecords(ctx, storage)
	if err != nil {
		return err
	}
	var carry []*session.UserRecord
	for i := range recs {
		if rec := &recs[i]; rec.Changed.After(since) || rec.BanChanged.After(since) {
			carry = append(carry, r.users.Merge(rec))
		}
	}
	var failed error
	for _, rec := range carry {
		opCtx, cancel := context.WithTimeout(ctx, OpTimeout)
		err := r.writeBackUser(opCtx, rec, false)
		cancel()
		if err != nil {
			// Written by retryUsers once Redis answers.
			r.queueUser(rec)
			failed = err
		}
	}
	if len(carry) > 0 {
		r.log.Info("carried the memory store's user records into Redis", zap.Int("count", len(carry)))
	}
	if failed != nil {
		return fmt.Errorf("user records: %w", failed)
	}
	b, _ := start.MarshalText()
	return storage.Store(ctx, marker, b)
}

// carryLogouts carries the logouts still in force, each time: a logout
// only ever refuses more, so carrying it again changes nothing.
func (r *Store) carryLogouts(ctx context.Context, storage certmagic.Storage, start time.Time) error {
	rev := session.NewRevocations(storage)
	if err := rev.Load(ctx); err != nil {
		return err
	}
	added := 0
	rev.Each(func(sid string, until time.Time) {
		if start.Before(until) && !r.revoked.Has(sid, start) {
			r.revoked.Add(sid, until)
			r.cache.Del(sid)
			added++
		}
	})
	horizon, err := rev.LoadHorizon(ctx)
	if err != nil {
		return err
	}
	if h := horizon.Latest(); h.After(start) {
		if err := r.saveHorizon(ctx, h); err != nil {
			return err
		}
	}
	if added == 0 {
		return nil
	}
	r.log.Info("carrying the memory store's logouts into Redis", zap.Int("count", added))
	// sync writes the revocations held here that Redis lacks.
	return r.sync(ctx)
}
