package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// How long a queued event waits for a replica to confirm it (WAIT 1),
// where the primary has one.
const redisWaitTimeout = 400 * time.Millisecond

// Every script reads the time from Redis (TIME), so leases and due times
// do not depend on the instances' clocks agreeing.
const redisNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// claimScript: KEYS[1] the id's record; ARGV token, lease ms, keep ms.
// The record is "d" once delivered or queued, "f:<token>:<until ms>" while
// an instance delivers it synchronously.
var claimScript = redis.NewScript(redisNow + `
local v = redis.call('GET', KEYS[1])
if v then
	if v == 'd' then return 'dup' end
	local u = tonumber(string.match(v, ':(%d+)$'))
	if u and u > now then return 'busy' end
end
redis.call('SET', KEYS[1], 'f:' .. ARGV[1] .. ':' .. string.format('%.0f', now + tonumber(ARGV[2])), 'PX', ARGV[3])
return 'new'`)

// releaseScript: KEYS[1] the id's record; ARGV token. Deletes the record
// only while this claim holds it.
var releaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 3) == 'f:' .. ARGV[1] .. ':' then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// touchScript: KEYS[1] the id's record. Sets its expiry again to what is
// left of it: a write that changes nothing but is replicated.
var touchScript = redis.NewScript(`
local t = redis.call('PTTL', KEYS[1])
if t > 0 then redis.call('PEXPIRE', KEYS[1], t) end
return 1`)

// enqueueScript: KEYS the id's record, due set, event hash, counts;
// ARGV member, event, delay ms, keep ms, kind.
var enqueueScript = redis.NewScript(redisNow + `
if redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) == 1 then
	redis.call('HINCRBY', KEYS[4], ARGV[5], 1)
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SET', KEYS[1], 'd', 'PX', ARGV[4])
return 1`)

// dueScript: KEYS due set, event hash; ARGV count, lease ms. Claims due
// events by moving their due time to the end of the lease: an instance
// that dies holding one leaves it due again then. Returns member, event,
// claim score triples.
var dueScript = redis.NewScript(redisNow + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
local lease_end = string.format('%.0f', now + tonumber(ARGV[2]))
for _, id in ipairs(ids) do
	local ev = redis.call('HGET', KEYS[2], id)
	if ev then
		redis.call('ZADD', KEYS[1], lease_end, id)
		table.insert(out, id)
		table.insert(out, ev)
		table.insert(out, lease_end)
	else
		redis.call('ZREM', KEYS[1], id)
	end
end
return out`)

// retryScript: KEYS due set, event hash; ARGV member, claim score, delay
// ms, event. Only while the claim holds (the due time is still the one
// the claim set).
var retryScript = redis.NewScript(redisNow + `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1`)

// removeScript: KEYS due set, event hash, counts; ARGV member, kind.
var removeScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
	if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) < 0 then
		redis.call('HSET', KEYS[3], ARGV[2], 0)
	end
end
return 1`)

type redisStore struct {
	client                 redis.UniversalClient
	log                    *zap.Logger
	prefix                 string
	dueKey, evKey, countKy string

	mu     sync.Mutex
	warned bool // WAIT or INFO refused (logged once)
	// replicated: the primary had a replica in sync at the last wait.
	// Losing it (a replica down, or dropped after repl-timeout) is
	// logged once per loss: queued events then have one copy.
	replicated bool
}

// RedisStore keeps the outbox in Redis under prefix: a sorted set of due
// times, a hash of events, a hash of counts by kind and a string per
// accepted id. All keys share one hash tag, so a Redis Cluster keeps them
// on one node and the scripts that touch several stay atomic.
func RedisStore(client redis.UniversalClient, prefix string, log *zap.Logger) Store {
	if log == nil {
		log = zap.NewNop()
	}
	p := prefix + "{outbox}:"
	return &redisStore{client: client, log: log, prefix: p, dueKey: p + "due", evKey: p + "events", countKy: p + "pending"}
}

func (s *redisStore) idKey(key string) string { return s.prefix + "id:" + key }

func (s *redisStore) claim(ctx context.Context, key string, lease, keep time.Duration) (claimState, string, error) {
	token := newToken()
	res, err := claimScript.Run(ctx, s.client, []string{s.idKey(key)}, token, lease.Milliseconds(), keep.Milliseconds()).Text()
	if err != nil {
		return claimNew, "", err
	}
	switch res {
	case "dup":
		return claimDuplicate, "", nil
	case "busy":
		return claimBusy, "", nil
	}
	return claimNew, token, nil
}

func (s *redisStore) done(ctx context.Context, key string, keep time.Duration) error {
	return s.client.Set(ctx, s.idKey(key), "d", keep).Err()
}

func (s *redisStore) release(ctx context.Context, key, token string) error {
	return releaseScript.Run(ctx, s.client, []string{s.idKey(key)}, token).Err()
}

// enqueue writes the event on the primary and then, where the primary has
// a replica in sync, waits briefly for one to have it too. When none
// confirms, or the wait itself fails, it fails with errUnconfirmed
// although the primary holds the event: WeChat is then asked to retry,
// and a failover right after the answer cannot lose an event WeChat was
// told is queued.
func (s *redisStore) enqueue(ctx context.Context, key string, r *record, delay, keep time.Duration) error {
	ev, err := json.Marshal(r)
	if err != nil {
		return err
	}
	keys := []string{s.idKey(key), s.dueKey, s.evKey, s.countKy}
	args := []any{key, ev, delay.Milliseconds(), keep.Milliseconds(), r.Kind}
	primary := s.primary(ctx)
	if primary == nil {
		return enqueueScript.Run(ctx, s.client, keys, args...).Err()
	}
	conn := primary.Conn()
	defer conn.Close()
	if err := enqueueScript.Run(ctx, conn, keys, args...).Err(); err != nil {
		return err
	}
	// The primary holds the event from here on, whatever the wait says.
	err = s.waitReplica(ctx, conn)
	if err != nil && !errors.Is(err, errUnconfirmed) {
		err = errors.Join(errUnconfirmed, err)
	}
	return err
}

// confirm makes sure the record of an id already accepted is on a replica
// before a retry of it is answered as a duplicate: the first answer may
// have been an error because no replica confirmed the event, and the
// record alone must not turn WeChat's retry into an acknowledgement. It
// rewrites the record's expiry, a write on this connection that WAIT
// then covers along with every earlier one (the event's included).
func (s *redisStore) confirm(ctx context.Context, key string) error {
	primary := s.primary(ctx)
	if primary == nil {
		return nil
	}
	conn := primary.Conn()
	defer conn.Close()
	if err := touchScript.Run(ctx, conn, []string{s.idKey(key)}).Err(); err != nil {
		return err
	}
	return s.waitReplica(ctx, conn)
}

// primary is the client of the primary holding the outbox, nil for a
// client that has none to give (a Ring).
func (s *redisStore) primary(ctx context.Context) *redis.Client {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		p, err := c.MasterForKey(ctx, s.dueKey)
		if err != nil {
			return nil
		}
		return p
	case *redis.Client:
		return c
	}
	return nil
}

// replicaWait is the longest enqueue waits for a replica after writing.
func (s *redisStore) replicaWait() time.Duration { return redisWaitTimeout }

// errUnconfirmed: the primary has the write, but no replica confirmed it
// in time, so a failover could still lose it.
var errUnconfirmed = errors.New("no replica confirmed the write in time")

// waitReplica waits for one replica (WAIT 1) to have the writes made on
// conn, when the primary has a replica in sync, and fails with
// errUnconfirmed when none does in time. A Redis that refuses INFO or
// WAIT (an ACL without them) is not waited on, and says so once.
func (s *redisStore) waitReplica(ctx context.Context, conn *redis.Conn) error {
	info, err := conn.Info(ctx, "replication").Result()
	var rerr redis.Error
	if errors.As(err, &rerr) {
		s.warnOnce("Redis refuses INFO; queued events do not wait for a replica, and a failover may lose one (grant +info)", err)
		return nil
	}
	if err != nil {
		return err
	}
	online := onlineReplicas(info) > 0
	s.mu.Lock()
	lost := s.replicated && !online
	s.replicated = online
	s.mu.Unlock()
	if lost {
		s.log.Warn("outbox: the Redis primary has no replica in sync any more; queued events are acknowledged with one copy, which a failover now would lose, until a replica is back")
	}
	if !online {
		return nil
	}
	wait := redisWaitTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-50*time.Millisecond)
	}
	if wait < 10*time.Millisecond {
		return errUnconfirmed
	}
	n, err := conn.Do(ctx, "WAIT", 1, wait.Milliseconds()).Int64()
	switch {
	case errors.As(err, &rerr):
		s.warnOnce("Redis refuses WAIT; queued events do not wait for a replica, and a failover may lose one (grant +wait)", err)
		return nil
	case err != nil:
		return err
	case n < 1:
		return errUnconfirmed
	}
	return nil
}

func (s *redisStore) warnOnce(msg string, err error) {
	s.mu.Lock()
	first := !s.warned
	s.warned = true
	s.mu.Unlock()
	if first {
		s.log.Warn(msg, zap.Error(err))
	}
}

// onlineReplicas counts the replicas in sync in an INFO replication reply.
func onlineReplicas(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
			n++
		}
	}
	return n
}

func (s *redisStore) due(ctx context.Context, n int, lease time.Duration) ([]*claimed, error) {
	res, err := dueScript.Run(ctx, s.client, []string{s.dueKey, s.evKey}, n, lease.Milliseconds()).StringSlice()
	if err != nil {
		return nil, err
	}
	var out []*claimed
	for i := 0; i+2 < len(res); i += 3 {
		r := new(record)
		if err := json.Unmarshal([]byte(res[i+1]), r); err != nil {
			s.log.Error("outbox: unreadable event removed", zap.String("event", res[i]), zap.Error(err))
			s.remove(ctx, &claimed{key: res[i], rec: &record{Kind: strings.SplitN(res[i], ":", 2)[0]}})
			continue
		}
		out = append(out, &claimed{key: res[i], rec: r, hold: res[i+2]})
	}
	return out, nil
}

func (s *redisStore) retry(ctx context.Context, c *claimed, delay time.Duration) error {
	ev, err := json.Marshal(c.rec)
	if err != nil {
		return err
	}
	return retryScript.Run(ctx, s.client, []string{s.dueKey, s.evKey}, c.key, c.hold, delay.Milliseconds(), ev).Err()
}

func (s *redisStore) remove(ctx context.Context, c *claimed) error {
	return removeScript.Run(ctx, s.client, []string{s.dueKey, s.evKey, s.countKy}, c.key, c.rec.Kind).Err()
}

func (s *redisStore) pending(ctx context.Context) (map[string]int, error) {
	all, err := s.client.HGetAll(ctx, s.countKy).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(all))
	for k, v := range all {
		n, _ := strconv.Atoi(v)
		out[k] = n
	}
	return out, nil
}

func (s *redisStore) open(context.Context) error { return nil }
func (s *redisStore) close()                     {}
