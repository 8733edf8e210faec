package redisstore

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// ErrOnceExists is PutOnce's answer for a key already stored.
var ErrOnceExists = errors.New("redisstore: key already stored")

// One-time values (a web login's state, a web-view handoff ticket) are
// put by requests that need no credential, so Redis keeps at most
// maxOnceValues of each kind (the part of the key before its first ':'),
// as the memory store does: beyond that the oldest of the kind is deleted
// for the new one, never the new one refused, and a flood of one kind
// (logins begun) leaves the others (handoff tickets) alone. They are
// spread over onceBuckets buckets, each a hash tag with an index of its
// keys per kind, so the bound is kept in one script on one Cluster slot
// per put and the values of a Cluster still spread over its primaries.
const (
	maxOnceValues = 100_000
	onceBuckets   = 16
	// onceIndexLife is how long a bucket's index outlives its last put,
	// longer than any one-time value lives.
	onceIndexLife = time.Hour
)

// onceBucket is the hash tag of key's bucket.
func onceBucket(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return "{o" + strconv.Itoa(int(h.Sum32()%onceBuckets)) + "}"
}

// onceKey is the Redis key of a one-time value; onceIndex that of the
// index of its kind in its bucket.
func (r *Store) onceKey(key string) string { return r.oncePrefix + onceBucket(key) + ":" + key }
func (r *Store) onceIndex(key string) string {
	kind, _, ok := strings.Cut(key, ":")
	if !ok {
		kind = ""
	}
	return r.oncePrefix + onceBucket(key) + ":index:" + kind
}

// putOnce stores a value unless its key is live, adds the key to its
// bucket's index, scored by Redis's clock in Unix ms, and drops from the
// index the oldest keys past the bucket's bound, never the one just put.
// It returns 0 when the key was live, else 1 followed by the dropped keys,
// whose values the caller deletes: a script may touch only the keys it is
// given, or proxied Clusters refuse it. Only commands the documented ACL
// allows. KEYS: the value's key, the index. ARGV: the value, its ttl in
// ms, the bucket's bound, the index's life in ms.
var putOnce = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
	return {'0'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - life)
redis.call('ZADD', KEYS[2], now, KEYS[1])
local out = {'1'}
-- From the bound-th newest on: keep the first of them, unless the new
-- key is among them (a tie in the same ms), then keep it instead.
local tail = redis.call('ZREVRANGE', KEYS[2], tonumber(ARGV[3]) - 1, -1)
local keepFirst = true
for _, k in ipairs(tail) do
	if k == KEYS[1] then keepFirst = false end
end
for i, k in ipairs(tail) do
	if k ~= KEYS[1] and not (keepFirst and i == 1) then
		redis.call('ZREM', KEYS[2], k)
		table.insert(out, k)
	end
end
redis.call('PEXPIRE', KEYS[2], life)
return out
`)

// PutOnce stores a one-time value for ttl, unless key is live: every
// instance sharing the Redis can then Take it, so a login begun on one
// instance finishes on any other.
func (r *Store) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	bound := (r.onceMax + onceBuckets - 1) / onceBuckets
	res, err := putOnce.Run(ctx, r.client, []string{r.onceKey(key), r.onceIndex(key)},
		value, ttl.Milliseconds(), bound, onceIndexLife.Milliseconds()).StringSlice()
	switch {
	case err != nil:
		return r.storeDown("SET NX", err)
	case len(res) == 0 || res[0] != "1":
		return ErrOnceExists
	}
	if dropped := res[1:]; len(dropped) > 0 {
		// One slot (the bucket's): one DEL in a Cluster too. They have left
		// the index, so the DEL outlives a caller hanging up; a value not
		// deleted still expires with its ttl.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
		defer dcancel()
		if err := r.client.Del(dctx, dropped...).Err(); err != nil {
			r.log.Warn("one-time values past the bound not deleted; they expire with their ttl", zap.Int("values", len(dropped)), zap.Error(err))
		}
	}
	return nil
}

// Take returns a one-time value and deletes it in one script: of two
// instances taking the same key at once, one gets it. Its entry in the
// index stays until it is the oldest or an hour old; deleting a key
// already gone costs nothing.
func (r *Store) Take(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	b, ok, err := r.take(ctx, r.onceKey(key))
	if ok || err != nil {
		return b, ok, err
	}
	// A value put by an instance of an earlier version, during a rolling
	// upgrade, is under the key without a bucket.
	return r.take(ctx, r.oncePrefix+key)
}

// takeOnce returns the value under KEYS[1] and deletes it: a script, as
// GET and DEL are in the documented ACL and MULTI and GETDEL are not.
var takeOnce = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
	redis.call('DEL', KEYS[1])
end
return v
`)

func (r *Store) take(ctx context.Context, k string) ([]byte, bool, error) {
	b, err := takeOnce.Run(ctx, r.client, []string{k}).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, r.storeDown("GET+DEL", err)
	}
	return []byte(b), true, nil
}
