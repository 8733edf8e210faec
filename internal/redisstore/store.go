// Package redisstore is the session store shared through Redis (a single
// server, Sentinels or a Cluster): sessions sealed under a data key wrapped
// by each signing key, revocations and user records pushed to every
// instance. It knows neither HTTP nor tokens.
package redisstore

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Time limits of the Redis store. A route makes at most one Redis call that
// can fail slowly (logout gives up after a failed revocation), so with
// OpTimeout at 1 s it answers 503 well within 2 s when Redis hangs.
const (
	OpTimeout         = time.Second            // one store call, retries included
	IOTimeout         = 500 * time.Millisecond // dial, read, write, wait for a pooled connection
	redisStartTimeout = 3 * time.Second        // loading the revocation list at start
	redisIdlePing     = 2 * time.Second        // subscriber silent this long: ping; no answer in as long again: reconnect
	redisRetryEvery   = time.Second            // retry revocations and user records Redis could not take
	usersSyncEvery    = time.Hour              // merge, write back and tidy the user records with Redis's
	usersSyncTimeout  = 30 * time.Second       // one such sync: a whole users hash, read and tidied
)

// Store keeps sessions and revocations in Redis, shared by every
// instance that uses the same Redis and signing key, with a ristretto L1 in
// front. Each revocation is also published to every instance's exact
// in-process set, so Revoked, called on every proxied request, never
// touches the network.
//
// Keys are under wechat_auth:<ns>:, where ns is random and kept with the
// data key (datakey.go), so deployments with different keys sharing
// one Redis never see each other's data. A session is a JSON value whose
// session_key is sealed with AES-256-GCM under the data key; a Redis dump
// alone reveals no session_key.
type Store struct {
	client  redis.UniversalClient
	mode    string        // Single, Sentinel or Cluster
	primary *primaryAsker // over Sentinels: where the primary is (primary.go)
	// lastMove is when the subscription last moved to another primary
	// (Unix nanoseconds).
	lastMove atomic.Int64
	log      *zap.Logger // the logger of the config that made the store
	cache    *ristretto.Cache[string, *session.Session]
	revoked  *session.Revocations
	aead     cipher.AEAD
	dataKey  *dataKey
	ring     *keyring.Ring  // the signing keys the data key is wrapped under (mu)
	legacy   []legacyLayout // the layout before key rotation, read too
	users    *session.Users

	sessionPrefix string // + sid: a session
	revokedKey    string // sorted set: sid scored by the Unix ms its revocation ends
	channel       string // pub/sub: tagged JSON (messages.go), or "<sid> <until Unix ms>" from earlier versions
	usersKey      string // hash: user → cut-off and ban (users.go)
	horizonKey    string // Unix ms no token issued by any instance outlives
	oncePrefix    string // + bucket + key: a one-time value (once.go)
	onceMax       int    // how many one-time values Redis keeps at most
	horizon       *session.Horizon

	mu          sync.Mutex
	pending     map[string]time.Time   // revocations Redis has not taken yet
	userPending map[string]pendingUser // user records Redis has not taken yet, by user key
	userGen     uint64                 // the last pendingUser.gen
	writes      chan *sessionWrite     // new sessions for the sessionWriters
	pubsub      *redis.PubSub          // the current subscription, closed by Destruct
	cut         bool                   // the subscription was lost and not yet back (logged once)
	noInfo      bool                   // INFO was refused (logged once)
	noWait      bool                   // WAIT was refused (logged once)

	listening     chan struct{} // closed once the first subscription is up
	listeningOnce sync.Once

	carryMu      sync.Mutex
	carrying     bool                 // a carry of the memory store runs (frommemory.go)
	carryApps    map[string]bool      // the apps it carries
	carryStorage certmagic.Storage    // where it reads: the newest config's storage
	carryGen     uint64               // bumped by every start: the carry makes one more pass
	carryWake    chan struct{}        // wakes a carry waiting to try again
	usersRead    map[string]time.Time // storage and app → when all its records were last read

	bg   context.Context // the background goroutines' context, done at Destruct
	stop context.CancelFunc
	done sync.WaitGroup
}

// New connects to Redis and loads the revocation list. It fails
// when Redis cannot be reached: an instance that started without the list
// would accept logged-out tokens.
func New(conn *Conn, ring *keyring.Ring, maxSessions int, log *zap.Logger) (*Store, error) {
	legacy, err := legacyLayouts(ring)
	if err != nil {
		return nil, err
	}
	RouteLog()
	client := conn.NewClient()
	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	if err := refuseClusterNode(ctx, client, conn.Mode); err != nil {
		client.Close()
		return nil, fmt.Errorf("%s: %w", conn.Where, err)
	}
	dk, made, err := loadDataKey(ctx, client, ring)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("%s: the data key: %w", conn.Where, err)
	}
	if made {
		// Once per deployment, at its first start. Seen on an instance
		// that should share another's sessions, it means the two have no
		// signing key in common.
		log.Info("made the data key of a new deployment in Redis: instances share its sessions only if they hold one of these signing keys",
			zap.String("namespace", "wechat_auth:"+dk.NS+":"), zap.Strings("kids", ring.Kids()))
	}
	aead, err := newAEAD(dk.Key)
	if err != nil {
		client.Close()
		return nil, err
	}
	cache, err := session.NewCache(maxSessions, nil)
	if err != nil {
		client.Close()
		return nil, err
	}
	prefix := "wechat_auth:" + dk.NS + ":"
	r := &Store{
		client:        client,
		mode:          conn.Mode,
		log:           log,
		cache:         cache,
		revoked:       session.NewRevocations(nil), // Redis is the durable copy
		aead:          aead,
		dataKey:       dk,
		ring:          ring,
		legacy:        legacy,
		users:         session.NewUsers(),
		sessionPrefix: prefix + "session:",
		revokedKey:    prefix + "revoked",
		channel:       prefix + "revoked",
		usersKey:      prefix + "users",
		horizonKey:    prefix + "token_horizon",
		oncePrefix:    prefix + "once:",
		onceMax:       maxOnceValues,
		pending:       make(map[string]time.Time),
		userPending:   make(map[string]pendingUser),
		carryApps:     make(map[string]bool),
		carryWake:     make(chan struct{}, 1),
		usersRead:     make(map[string]time.Time),
		writes:        make(chan *sessionWrite, redisWriteBatch),
		listening:     make(chan struct{}),
	}
	if conn.newPrimaryAsker != nil {
		r.primary = conn.newPrimaryAsker()
	}
	r.horizon = session.NewHorizon(r.saveHorizon)
	if err := r.sync(ctx); err != nil {
		r.client.Close()
		cache.Close()
		return nil, fmt.Errorf("%s: loading the revocation list: %w", conn.Where, err)
	}
	bg, stop := context.WithCancel(context.Background())
	r.bg, r.stop = bg, stop
	r.done.Add(2 + redisWriters)
	go r.listen(bg)
	go r.retryPending(bg)
	for range redisWriters {
		go r.sessionWriter(bg)
	}
	// Serving before the subscription is up would let sessions into L1
	// that a message published meanwhile should have changed. A
	// subscription that cannot be made (an ACL without the channel) is
	// logged by listen, which keeps trying; the instance starts anyway.
	select {
	case <-r.listening:
	case <-time.After(redisStartTimeout):
	}
	return r, nil
}

// storeDown wraps a Redis error so the routes answer store_unavailable,
// and has a Cluster client reload its slot map: go-redis does that on
// MOVED only, so after a failover it would keep dialling the dead primary.
func (r *Store) storeDown(op string, err error) error {
	r.failed()
	return fmt.Errorf("redis %s: %w: %w", op, session.ErrStoreDown, err)
}

// sessionKey is the key of a session.
func (r *Store) sessionKey(sid string) string { return r.sessionPrefix + sid }

// Get reads the L1 first, Redis on a miss.
func (r *Store) Get(ctx context.Context, sid string) (*session.Session, error) {
	if s, ok := r.cache.Get(sid); ok {
		metrics.CountStore("get", "hit")
		return s, nil
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.sessionKey(sid)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		s, expires, err := r.legacyGet(ctx, sid)
		switch {
		case errors.Is(err, session.ErrNoSession):
			metrics.CountStore("get", "miss")
			return nil, err
		case err != nil:
			metrics.CountStore("get", "error")
			return nil, err
		}
		metrics.CountStore("get", "hit")
		r.cache.SetWithTTL(sid, s, 1, time.Until(expires))
		return s, nil
	case err != nil:
		metrics.CountStore("get", "error")
		return nil, r.storeDown("GET", err)
	}
	s, expires, err := r.open(sid, b)
	if err != nil {
		r.log.Warn("session in Redis cannot be opened; treated as expired", zap.Error(err))
		metrics.CountStore("get", "miss")
		return nil, session.ErrNoSession
	}
	metrics.CountStore("get", "hit")
	if ttl := time.Until(expires); ttl > 0 {
		// A fill the L1 drops is read from Redis again next time.
		r.cache.SetWithTTL(sid, s, 1, ttl)
	}
	return s, nil
}

// Put writes the session to Redis and, once Redis has answered that it
// holds it, to the L1. Logins that arrive together share one round trip
// (sessionWriter), but each Put returns only after Redis acknowledged its
// own commands.
func (r *Store) Put(ctx context.Context, s *session.Session, ttl time.Duration) error {
	b, err := r.seal(s, time.Now().Add(ttl))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	w := &sessionWrite{s: s, sealed: b, ttl: ttl, done: make(chan error, 1)}
	if r.writes == nil {
		r.writeSessions(ctx, []*sessionWrite{w})
	} else {
		select {
		case r.writes <- w:
		case <-ctx.Done():
			metrics.CountStore("set", "error")
			return r.storeDown("SET", ctx.Err())
		}
	}
	select {
	case err = <-w.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		metrics.CountStore("set", "error")
		return r.storeDown("SET", err)
	}
	session.CachePut(r.cache, s, ttl)
	return nil
}

// sessionWrite is a session waiting to be written by a sessionWriter.
type sessionWrite struct {
	s      *session.Session
	sealed []byte
	ttl    time.Duration
	done   chan error // Redis's answer to this session's commands
	cmds   [4]redis.Cmder
}

// Session writes: the writers that send them to Redis, and the most one
// round trip carries.
const (
	redisWriters    = 2
	redisWriteBatch = 64
)

// sessionWriter sends the sessions queued on r.writes to Redis. It takes
// the first one waiting and every other one already queued, and writes them
// all in one pipeline: under load, one round trip (one write and one read
// on each side) then stores many logins instead of one, which is most of
// what a login cost Caddy and Redis beyond the memory store's. With no
// other login waiting a session goes alone, as before.
func (r *Store) sessionWriter(ctx context.Context) {
	defer r.done.Done()
	batch := make([]*sessionWrite, 0, redisWriteBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-r.writes:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < redisWriteBatch {
			select {
			case w := <-r.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		// Its own deadline: the waiting Puts give up on theirs, and one
		// whose client went away must not fail the others.
		wctx, cancel := context.WithTimeout(ctx, OpTimeout)
		r.writeSessions(wctx, batch)
		cancel()
		clear(batch)
	}
}

// writeSessions writes the sessions of batch in one pipeline and tells
// each the outcome of its own commands.
func (r *Store) writeSessions(ctx context.Context, batch []*sessionWrite) {
	_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, w := range batch {
			w.cmds[0] = pipe.Set(ctx, r.sessionKey(w.s.SID), w.sealed, w.ttl)
			r.addUserSession(ctx, pipe, w.s, w.ttl, w.cmds[1:])
		}
		return nil
	})
	for _, w := range batch {
		var werr error
		for _, c := range w.cmds {
			if werr = c.Err(); werr != nil {
				break
			}
		}
		if werr == nil && err != nil && w.cmds[0] == nil {
			werr = err
		}
		w.done <- werr
	}
}

func (r *Store) Delete(ctx context.Context, sid string) error {
	r.cache.Del(sid)
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if err := r.client.Del(ctx, r.sessionKey(sid)).Err(); err != nil {
		metrics.CountStore("delete", "error")
		return r.storeDown("DEL", err)
	}
	metrics.CountStore("delete", "ok")
	return nil
}

// Revoke applies the revocation here at once, then writes and publishes it.
// When Redis does not take it, it stays pending and is written as soon as
// Redis answers again (unless this instance stops first).
func (r *Store) Revoke(ctx context.Context, sid string, until time.Time) error {
	r.revoked.Add(sid, until)
	r.cache.Del(sid)
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if err := r.pushRevocations(ctx, map[string]time.Time{sid: until}); err != nil {
		r.mu.Lock()
		r.pending[sid] = until
		r.mu.Unlock()
		metrics.CountStore("revoke", "error")
		return r.storeDown("revoke", err)
	}
	metrics.CountStore("revoke", "ok")
	return nil
}

func (r *Store) Revoked(sid string, now time.Time) bool { return r.revoked.Has(sid, now) }

// Reuse resizes the L1; Redis, not Caddy's storage, keeps revocations.
func (r *Store) Reuse(maxSessions int, _ certmagic.Storage) {
	session.Resize(r.cache, maxSessions)
}

// Destruct stops the subscriber and closes the connections when the last
// config using this store is unloaded.
func (r *Store) Destruct() error {
	r.stop()
	r.mu.Lock()
	if r.pubsub != nil {
		r.pubsub.Close() // unblocks a pending receive
	}
	r.mu.Unlock()
	r.done.Wait()
	r.mu.Lock()
	if n := len(r.userPending); n > 0 {
		r.log.Warn("user records Redis has not taken are dropped; make those revocations and bans again", zap.Int("count", n))
	}
	r.mu.Unlock()
	if r.primary != nil {
		r.primary.close()
	}
	err := r.client.Close()
	r.cache.Close()
	return err
}

// raiseHorizon keeps the later of the horizon in Redis and until, and
// returns the horizon Redis then holds. The key expires with the horizon.
var raiseHorizon = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if want > cur then
	redis.call('SET', KEYS[1], ARGV[1])
	redis.call('PEXPIREAT', KEYS[1], ARGV[1])
	return want
end
return cur
`)

func (r *Store) saveHorizon(ctx context.Context, until time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	ms, err := raiseHorizon.Run(ctx, r.client, []string{r.horizonKey}, until.UnixMilli()).Int64()
	if err != nil {
		return r.storeDown("token horizon", err)
	}
	r.horizon.Raise(time.UnixMilli(ms))
	return nil
}

func (r *Store) ExtendHorizon(ctx context.Context, exp time.Time) error {
	return r.horizon.Extend(ctx, exp)
}

// Horizon reads what every instance recorded; when Redis does not answer,
// what this instance knows.
func (r *Store) Horizon(ctx context.Context) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	ms, err := r.client.Get(ctx, r.horizonKey).Int64()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return r.horizon.Latest(), r.storeDown("GET token horizon", err)
	default:
		r.horizon.Raise(time.UnixMilli(ms))
	}
	return r.horizon.Latest(), nil
}

// Interface guards
var (
	_ session.Store     = (*Store)(nil)
	_ session.UserStore = (*Store)(nil)
	_ caddy.Destructor  = (*Store)(nil)
)

// Client is the store's Redis client, for a user that keeps its own keys
// in the same Redis (the delivery outbox) and holds the store, in the
// usage pool, for as long as it uses the client.
func (r *Store) Client() redis.UniversalClient { return r.client }
