package redisstore

import (
	"context"
	"path"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// carriedPrefix keeps in Caddy's storage, per Redis deployment (its data
// key's namespace), when CarryMemoryStore last carried this storage's
// user records into it. A record changed since is carried again; an
// older one is not: Redis may have superseded it (a ban lifted there),
// and forgotten that lift after its tombstone.
const carriedPrefix = "wechat_auth/carried_to_redis"

// CarryMemoryStore writes to Redis what the memory store kept in storage
// and still matters: the logouts no token has outlived, the token
// horizon, and the users' cut-offs and bans. A deployment that moves from
// the memory store to Redis thus keeps them: without this, a token logged
// out before the move would verify again, and a banned user log in. Each
// is merged with what Redis holds, as any other write.
func (r *Store) CarryMemoryStore(ctx context.Context, storage certmagic.Storage) error {
	if storage == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	start := time.Now()
	marker := path.Join(carriedPrefix, r.dataKey.NS)
	var since time.Time
	if b, err := storage.Load(ctx, marker); err == nil {
		_ = since.UnmarshalText(b)
	}

	rev := session.NewRevocations(storage)
	if err := rev.Load(ctx); err != nil {
		return err
	}
	logouts := make(map[string]time.Time)
	rev.Each(func(sid string, until time.Time) {
		if start.Before(until) && !r.revoked.Has(sid, start) {
			logouts[sid] = until
		}
	})
	for sid, until := range logouts {
		r.revoked.Add(sid, until)
		r.cache.Del(sid)
	}
	if len(logouts) > 0 {
		// sync writes the revocations held here that Redis lacks.
		if err := r.sync(ctx); err != nil {
			return err
		}
	}
	horizon, err := rev.LoadHorizon(ctx)
	if err != nil {
		return err
	}
	if h := horizon.Latest(); h.After(start) {
		if err := r.saveHorizon(ctx, h); err != nil {
			return err
		}
	}

	users, err := session.LoadUsers(ctx, storage)
	if err != nil {
		return err
	}
	carried := 0
	var failed error
	for _, rec := range users.Differing(nil) {
		if !rec.Changed.After(since) && !rec.BanChanged.After(since) {
			continue
		}
		if err := r.SaveUser(ctx, &rec); err != nil {
			// Queued: written once Redis answers, and carried again at
			// the next start, as the marker stays behind.
			failed = err
			continue
		}
		carried++
	}
	if len(logouts) > 0 || carried > 0 {
		r.log.Info("carried the memory store's logouts and user records into Redis",
			zap.Int("logouts", len(logouts)), zap.Int("users", carried))
	}
	if failed != nil {
		return failed
	}
	b, _ := start.MarshalText()
	return storage.Store(ctx, marker, b)
}
