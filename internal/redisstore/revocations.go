package redisstore

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// pushRevocations writes revocations to the sorted set, trims the expired
// ones and publishes each to the other instances (in a Cluster a PUBLISH
// reaches the subscribers of every node), in one round trip on one
// connection to the primary that holds the set. When that primary has a
// replica it then waits until one has them too (errReplicaLag when none
// does in time): a revocation only the primary has is lost if it dies.
func (r *Store) pushRevocations(ctx context.Context, revs map[string]time.Time) error {
	primary, err := r.primaryFor(ctx, r.revokedKey)
	if err != nil {
		return err
	}
	conn := primary.Conn()
	defer conn.Close()
	now := time.Now()
	var writes []redis.Cmder
	var info *redis.StringCmd
	conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		members := make([]redis.Z, 0, len(revs))
		for sid, until := range revs {
			members = append(members, redis.Z{Score: float64(until.UnixMilli()), Member: sid})
		}
		writes = append(writes, p.ZAdd(ctx, r.revokedKey, members...))
		writes = append(writes, p.ZRemRangeByScore(ctx, r.revokedKey, "-inf", strconv.FormatInt(now.UnixMilli(), 10)))
		for sid, until := range revs {
			writes = append(writes, p.Publish(ctx, r.channel, sessionMessage(sid, until)))
			// Instances of the version before key rotation, still running
			// during a rolling upgrade, hear logouts on their own channel
			// only. (They would not read them from the list when they
			// restart; an instance restarting then is upgraded.)
			for _, l := range r.legacy {
				writes = append(writes, p.Publish(ctx, l.revokedKey, legacySessionMessage(sid, until)))
			}
		}
		info = p.Info(ctx, "replication")
		return nil
	})
	for _, c := range writes {
		if err := c.Err(); err != nil {
			return err
		}
	}
	var rerr redis.Error
	switch err := info.Err(); {
	case errors.As(err, &rerr):
		r.warnOnce(&r.noInfo, "Redis refuses INFO; logouts do not wait for a replica, and a failover may lose one (grant +info to the ACL user)", err)
		return nil
	case err != nil:
		return err
	}
	return r.waitReplica(ctx, conn, onlineReplicas(info.Val()))
}

// sync merges Redis's revocation list into this instance's set, and writes
// back the revocations only this instance knows: those Redis could not take
// when they were made, and those lost when Redis restarted without
// persistence. It runs at start and after every (re)subscription, so
// nothing published while this instance could not hear is missed.
func (r *Store) sync(ctx context.Context) error {
	if err := r.keepDataKey(ctx); err != nil {
		return err
	}
	now := time.Now()
	remote, err := r.client.ZRangeByScoreWithScores(ctx, r.revokedKey, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(remote))
	// Revocations of the layout before key rotation are merged as only
	// this instance's, so they are written to the current list.
	old, err := r.legacyRevocations(ctx, now)
	if err != nil {
		return err
	}
	for _, z := range old {
		if sid, ok := z.Member.(string); ok {
			r.revoked.Add(sid, time.UnixMilli(int64(z.Score)))
		}
	}
	if err := r.syncUsers(ctx, now); err != nil {
		return err
	}
	for _, z := range remote {
		sid, ok := z.Member.(string)
		if !ok {
			continue
		}
		known[sid] = true
		r.revoked.Add(sid, time.UnixMilli(int64(z.Score)))
		r.cache.Del(sid)
	}
	missing := make(map[string]time.Time)
	r.revoked.Each(func(sid string, until time.Time) {
		if !known[sid] && now.Before(until) {
			missing[sid] = until
		}
	})
	if _, err := r.pushInBatches(ctx, missing); err != nil {
		return err
	}
	if len(missing) > 0 {
		r.log.Info("wrote back revocations Redis did not have", zap.Int("count", len(missing)))
	}
	return nil
}

// pushInBatches writes revs to Redis, 500 at a time. A sid no replica
// confirmed yet stays pending (retryPending writes it again until one
// does); one written leaves pending. It stops at the first other error,
// and returns it with the sids it did not write.
func (r *Store) pushInBatches(ctx context.Context, revs map[string]time.Time) (unwritten map[string]time.Time, err error) {
	const batch = 500
	unwritten = maps.Clone(revs)
	chunk := make(map[string]time.Time, batch)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := r.pushRevocations(ctx, chunk)
		if err != nil && !errors.Is(err, errReplicaLag) {
			return err
		}
		r.mu.Lock()
		for sid, until := range chunk {
			if err != nil {
				// On the primary, not yet on a replica.
				r.pending[sid] = until
			} else {
				delete(r.pending, sid)
			}
			delete(unwritten, sid)
		}
		r.mu.Unlock()
		clear(chunk)
		return nil
	}
	for sid, until := range revs {
		chunk[sid] = until
		if len(chunk) == batch {
			if err := flush(); err != nil {
				return unwritten, err
			}
		}
	}
	return unwritten, flush()
}

// retryPending writes the revocations and user records Redis could not
// take, once a second until it takes them. It also keeps the user
// records tidy: here every minute (session.Users.Tidy), and in Redis,
// with a sync of them, every usersSyncEvery, for an instance whose
// subscription never drops.
func (r *Store) retryPending(ctx context.Context) {
	defer r.done.Done()
	t := time.NewTicker(redisRetryEvery)
	defer t.Stop()
	lastUsersSync := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		r.users.Tidy(now)
		if now.Sub(lastUsersSync) >= usersSyncEvery {
			lastUsersSync = now
			opCtx, cancel := context.WithTimeout(ctx, usersSyncTimeout)
			if err := r.syncUsers(opCtx, now); err != nil {
				r.log.Warn("cannot tidy the user records in Redis; trying again later", zap.Error(err))
			}
			cancel()
		}
		r.retryUsers(ctx)
		r.mu.Lock()
		revs := make(map[string]time.Time, len(r.pending))
		for sid, until := range r.pending {
			if time.Now().Before(until) {
				revs[sid] = until
			} else {
				delete(r.pending, sid)
			}
		}
		r.mu.Unlock()
		if len(revs) == 0 {
			continue
		}
		opCtx, cancel := context.WithTimeout(ctx, OpTimeout)
		err := r.pushRevocations(opCtx, revs)
		cancel()
		if err != nil {
			r.failed()
			continue
		}
		r.mu.Lock()
		for sid := range revs {
			delete(r.pending, sid)
		}
		r.mu.Unlock()
		r.log.Info("revocations made while Redis was unavailable are now shared", zap.Int("count", len(revs)))
	}
}

// listen keeps a subscription to the revocation channel, reconnecting
// whenever it is lost, and merges the full list after every subscription.
func (r *Store) listen(ctx context.Context) {
	defer r.done.Done()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if r.subscribe(ctx) {
			backoff = 100 * time.Millisecond
		} else {
			backoff = min(2*backoff, 2*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// subscribe runs one subscription until it is lost, and reports whether it
// was ever established. go-redis reconnects a PubSub by itself, but its
// health check only writes a PING, so a silently dead connection would
// block forever: here a PING unanswered within redisIdlePing ends the
// subscription, and the next one starts on a fresh connection.
func (r *Store) subscribe(ctx context.Context) (established bool) {
	// Over Sentinels, the subscription is made to the primary a majority
	// of them name, and moved when they name another (watchPrimary). When
	// those that answer do not make a majority, go-redis's choice is
	// taken, and moved to theirs once they do; when none answers, go-redis
	// could not find the primary either.
	var primary string
	var ps *redis.PubSub
	if r.primary != nil {
		var err error
		primary, err = r.primary.primary(ctx)
		switch {
		case primary != "":
			sub := r.primary.subscriber(primary)
			defer sub.Close()
			ps = sub.Subscribe(ctx)
		case !errors.Is(err, errNoMajority):
			r.lost(err)
			return false
		}
	}
	if ps == nil {
		ps = r.client.Subscribe(ctx)
	}
	r.mu.Lock()
	r.pubsub = ps
	r.mu.Unlock()
	defer ps.Close()
	if err := ps.Subscribe(ctx, append([]string{r.channel}, r.legacyChannels()...)...); err != nil {
		r.lost(err)
		return false
	}
	var moved atomic.Bool
	if r.primary != nil {
		watchCtx, stop := context.WithCancel(ctx)
		defer stop()
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			r.watchPrimary(watchCtx, primary, func() { moved.Store(true); ps.Close() })
		}()
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, redisIdlePing)
		if ctx.Err() != nil || moved.Load() {
			return established
		}
		var ne interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			pingCtx, cancel := context.WithTimeout(ctx, OpTimeout)
			err = ps.Ping(pingCtx)
			cancel()
			if err != nil {
				r.lost(err)
				return established
			}
			pinged = true
			continue
		case err != nil:
			r.lost(err)
			return established
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			// Once every channel is subscribed (the current one and those
			// of the old layout).
			if m.Kind != "subscribe" || m.Count != 1+len(r.legacy) {
				continue
			}
			// Subscribed first, then read the list: a revocation made in
			// between is both published to us and in the list.
			syncCtx, cancel := context.WithTimeout(ctx, redisStartTimeout)
			err := r.sync(syncCtx)
			cancel()
			if err != nil {
				r.lost(err)
				return established
			}
			// Sessions read into L1 before now may have missed a
			// message (a session_key replaced, a session ended): read
			// them from Redis again. Revocations need no such care; the
			// list was just read.
			r.cache.Clear()
			r.listeningOnce.Do(func() { close(r.listening) })
			established = true
			r.mu.Lock()
			wasCut := r.cut
			r.cut = false
			r.mu.Unlock()
			if wasCut {
				r.log.Info("Redis subscription is back; revocations made meanwhile are merged")
			}
		case *redis.Message:
			r.apply(m.Payload)
		}
	}
}

// watchPrimary asks the Sentinels every primaryPoll where the primary is,
// and calls move once they name another than primary (the server the
// subscription is on; "" when they did not answer as it was made): the
// subscription ends, and the next is made on the primary they name. Moves
// are at least primaryMoveGap apart.
func (r *Store) watchPrimary(ctx context.Context, primary string, move func()) {
	if wait := time.Until(time.Unix(0, r.lastMove.Load()).Add(primaryMoveGap)); wait > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	t := time.NewTicker(primaryPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := r.primary.primary(ctx)
		if err != nil || now == primary {
			continue
		}
		if primary != "" {
			r.log.Info("the Redis primary moved; the revocation subscription follows it",
				zap.String("from", primary), zap.String("to", now))
		}
		r.lastMove.Store(time.Now().UnixNano())
		move()
		return
	}
}

// lost logs, once per outage, that revocations from other instances are
// not heard for now.
func (r *Store) lost(err error) {
	r.failed()
	r.mu.Lock()
	first := !r.cut
	r.cut = true
	r.mu.Unlock()
	if first {
		r.log.Warn("Redis subscription lost; logouts on other instances reach this one when it is back", zap.Error(err))
	}
}

// apply merges one published message: a tagged one (messages.go), or
// a revocation "<sid> <until Unix ms>" as earlier versions publish it.
func (r *Store) apply(payload string) {
	if strings.HasPrefix(payload, "{") {
		r.applyTagged(payload)
		return
	}
	sid, ms, ok := strings.Cut(payload, " ")
	if !ok || sid == "" {
		return
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return
	}
	r.revoked.Add(sid, time.UnixMilli(n))
	r.cache.Del(sid)
}
