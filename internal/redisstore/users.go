package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// In Redis each user has a sorted set of their latest session ids, scored
// by creation time, so any instance finds the user's newest live session.

// redisUserKey names the sorted set of a user's sessions, beside the
// sessions themselves. appid and openid hold no ':' (a validated openid is
// [A-Za-z0-9_-]).
func redisUserKey(sessionPrefix, appid, openid string) string {
	return strings.TrimSuffix(sessionPrefix, "session:") + "user:" + appid + ":" + openid
}

// addUserSession queues, on pipe, the recording of a new session of its
// user: added, the set trimmed to the latest session.UserSessionsKept, and kept as
// long as the session. Its three commands go to cmds.
func (r *Store) addUserSession(ctx context.Context, pipe redis.Pipeliner, s *session.Session, ttl time.Duration, cmds []redis.Cmder) {
	key := redisUserKey(r.sessionPrefix, s.AppID, s.OpenID)
	cmds[0] = pipe.ZAdd(ctx, key, redis.Z{Score: float64(s.Created.UnixMilli()), Member: s.SID})
	cmds[1] = pipe.ZRemRangeByRank(ctx, key, 0, -session.UserSessionsKept-1)
	cmds[2] = pipe.PExpire(ctx, key, ttl)
}

// NewestSession reads the user's latest session ids from Redis and returns
// the newest that is live.
func (r *Store) NewestSession(ctx context.Context, appid, openid string) (*session.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	sids, err := r.client.ZRevRange(ctx, redisUserKey(r.sessionPrefix, appid, openid), 0, session.UserSessionsKept-1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		metrics.CountStore("get", "error")
		return nil, r.storeDown("ZREVRANGE", err)
	}
	return session.NewestLive(ctx, r, appid, openid, sids)
}

// SetSessionKey replaces the session_key of a stored session, keeping its
// expiry; a session deleted meanwhile (a logout) stays deleted. Every
// instance, this one included, drops its L1 copy of the session, so all
// read the newest key.
func (r *Store) SetSessionKey(ctx context.Context, s *session.Session, key string) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	rkey := r.sessionKey(s.SID)
	ttl, err := r.client.PTTL(ctx, rkey).Result()
	if err != nil {
		return r.storeDown("PTTL", err)
	}
	if ttl <= 0 {
		return session.ErrNoSession
	}
	ns := *s
	ns.SessionKey = key
	b, err := r.seal(&ns, time.Now().Add(ttl))
	if err != nil {
		return err
	}
	var set *redis.StatusCmd
	_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetArgs(ctx, rkey, b, redis.SetArgs{Mode: "XX", KeepTTL: true})
		// Other instances drop their L1 copy, which holds the old key.
		p.Publish(ctx, r.channel, rekeyedMessage(s.SID))
		return nil
	})
	if err == nil {
		err = set.Err()
	}
	switch {
	case errors.Is(err, redis.Nil):
		return session.ErrNoSession
	case err != nil:
		metrics.CountStore("set", "error")
		return r.storeDown("SET", err)
	}
	// This instance's copy is dropped, not replaced: put back after the
	// write, it could land after another instance's later key had dropped
	// it, and stay stale. The next read takes what Redis holds.
	r.cache.Del(s.SID)
	return nil
}

func (r *Store) Users() *session.Users { return r.users }

// SaveUser merges rec here, then with the users hash's record of the user
// (writeBackUser: this instance may not have heard of a change another
// made), writes the result and publishes it to the other instances. When
// Redis does not take it, it holds here and is written as soon as Redis
// answers (retryUsers).
func (r *Store) SaveUser(ctx context.Context, rec *session.UserRecord) error {
	decided := rec.Decided
	rec = r.users.Merge(rec)
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if err := r.writeBackUser(ctx, rec, decided); err != nil {
		r.queueUser(rec)
		return fmt.Errorf("%w: %w", session.ErrQueued, r.storeDown("user record", err))
	}
	return nil
}

// pendingUser is a user record Redis did not take, kept whole, as it was
// when it was queued: a lifted ban that no longer matters must still
// reach Redis, or a sync would bring the ban back. gen tells it from a
// record of the same user queued after it.
type pendingUser struct {
	rec *session.UserRecord
	gen uint64
}

// queueUser keeps rec for retryUsers, merged with the user's record
// queued before.
func (r *Store) queueUser(rec *session.UserRecord) {
	key := identity.UserKey(rec.AppID, rec.OpenID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.userPending[key]; ok {
		rec = session.MergeRecords(p.rec, rec)
	}
	r.userGen++
	r.userPending[key] = pendingUser{rec: rec, gen: r.userGen}
}

// retryUsers writes the queued user records; one Redis does not take
// stays queued for the next tick. It runs in retryPending.
func (r *Store) retryUsers(ctx context.Context) {
	r.mu.Lock()
	queued := maps.Clone(r.userPending)
	r.mu.Unlock()
	written := 0
	for key, p := range queued {
		opCtx, cancel := context.WithTimeout(ctx, OpTimeout)
		err := r.writeBackUser(opCtx, p.rec, false)
		cancel()
		if errors.Is(err, errUserRaced) {
			continue
		}
		if err != nil {
			r.failed()
			break
		}
		r.unqueueUser(key, p.gen)
		written++
	}
	if written > 0 {
		r.log.Info("wrote user records Redis did not have (made while it was unavailable, or lost when it restarted empty)", zap.Int("count", written))
	}
}

// unqueueUser forgets the user's queued record if it is still the one of
// generation gen: one queued since is written on the next tick.
func (r *Store) unqueueUser(key string, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.userPending[key]; ok && cur.gen == gen {
		delete(r.userPending, key)
	}
}

// betweenUserReadAndWrite, set by tests only, runs in writeBackUser
// between its read of the user's record and its write.
var betweenUserReadAndWrite func()

// errUserRaced: another instance kept changing the user's record while
// writeBackUser tried to write it.
var errUserRaced = errors.New("the user's record changed in Redis meanwhile")

// setUserIf: KEYS[1] the users hash; ARGV field, the value it is expected
// to hold ("" for none), the new value. 1 when it was set.
var setUserIf = redis.NewScript(`
if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`)

// writeBackUser merges rec with the user's record in Redis, writes the
// result only if Redis's is still the one it read (a record another
// instance wrote meanwhile is never overwritten, but merged on the next
// try), and publishes it. decided: rec's ban is an operator's decision
// made just now, so any decision Redis holds was made before it: rec's
// is dated after that one when this instance's clock says otherwise. A
// queued record is not: by the time it is written, Redis may hold a
// decision made after it.
func (r *Store) writeBackUser(ctx context.Context, rec *session.UserRecord, decided bool) error {
	field := identity.UserKey(rec.AppID, rec.OpenID)
	for range 3 {
		raw, err := r.client.HGet(ctx, r.usersKey, field).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		merged := rec
		var theirs session.UserRecord
		if raw != "" && json.Unmarshal([]byte(raw), &theirs) == nil && theirs.AppID == rec.AppID && theirs.OpenID == rec.OpenID {
			ours := rec
			if d := theirs.BanDecided(); decided && !rec.BanDecided().After(d) {
				c := *rec
				c.BanChanged = d.Add(time.Millisecond)
				ours = &c
			}
			merged = session.MergeRecords(&theirs, ours)
		}
		b, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		if betweenUserReadAndWrite != nil {
			betweenUserReadAndWrite()
		}
		if string(b) != raw {
			set, err := setUserIf.Run(ctx, r.client, []string{r.usersKey}, field, raw, b).Int()
			if err != nil {
				return err
			}
			if set == 0 {
				continue
			}
		}
		// What was written holds here too: Redis's record may hold a
		// change this instance had not heard of.
		r.users.Merge(merged)
		return r.client.Publish(ctx, r.channel, userMessage(merged)).Err()
	}
	return errUserRaced
}

// syncUsers merges the users hash into this instance's records, forgets
// those that are gone (session.Users.Forget), deletes them from Redis,
// and queues for retryUsers those held here that Redis lacks or holds
// otherwise (Redis restarted empty, or lost a write). It runs with sync,
// at start and after every (re)subscription, and every usersSyncEvery.
func (r *Store) syncUsers(ctx context.Context, now time.Time) error {
	all, err := r.client.HGetAll(ctx, r.usersKey).Result()
	if err != nil {
		return err
	}
	var expired []string
	remote := make(map[string]*session.UserRecord, len(all))
	for field, v := range all {
		rec := new(session.UserRecord)
		if json.Unmarshal([]byte(v), rec) != nil || rec.AppID == "" || rec.OpenID == "" {
			continue
		}
		remote[identity.UserKey(rec.AppID, rec.OpenID)] = rec
		// Merged even when it no longer matters: it may supersede a ban
		// held here.
		r.users.Merge(rec)
		if rec.Gone(now) {
			expired = append(expired, field)
		}
	}
	r.users.Forget(now)
	for _, rec := range r.users.Differing(remote) {
		r.queueUser(&rec)
	}
	if len(expired) > 0 {
		return r.client.HDel(ctx, r.usersKey, expired...).Err()
	}
	return nil
}
