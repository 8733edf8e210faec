package wechatauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Time limits of the Redis store. A route makes at most one Redis call that
// can fail slowly (logout gives up after a failed revocation), so with
// redisOpTimeout at 1 s it answers 503 well within 2 s when Redis hangs.
const (
	redisOpTimeout    = time.Second            // one store call, retries included
	redisIOTimeout    = 500 * time.Millisecond // dial, read, write, wait for a pooled connection
	redisStartTimeout = 3 * time.Second        // loading the revocation list at start
	redisIdlePing     = 2 * time.Second        // subscriber silent this long: ping; no answer in as long again: reconnect
	redisRetryEvery   = time.Second            // retry revocations Redis could not take
)

// HKDF info strings: the session_key encryption key and the key namespace
// are both derived from the signing key, for different uses.
const (
	hkdfSessionKey = "wechat_auth session_key v1"
	hkdfNamespace  = "wechat_auth redis namespace v1"
)

// redisStore keeps sessions and revocations in Redis, shared by every
// instance that uses the same Redis and signing key, with a ristretto L1 in
// front. Each revocation is also published to every instance's exact
// in-process set, so Revoked, called on every proxied request, never
// touches the network.
//
// Keys are under wechat_auth:<ns>:, where ns is derived from the signing
// key, so deployments with different keys sharing one Redis never see each
// other's data. A session is a JSON value whose session_key is sealed with
// AES-256-GCM under a key derived from the signing key; a Redis dump alone
// reveals no session_key.
type redisStore struct {
	client  *redis.Client
	log     *zap.Logger // the logger of the config that made the store
	cache   *ristretto.Cache[string, *Session]
	revoked *revocations
	aead    cipher.AEAD

	sessionPrefix string // + sid: a session
	revokedKey    string // sorted set: sid scored by the Unix ms its revocation ends
	channel       string // pub/sub: "<sid> <until Unix ms>"

	mu      sync.Mutex
	pending map[string]time.Time // revocations Redis has not taken yet
	pubsub  *redis.PubSub        // the current subscription, closed by Destruct
	cut     bool                 // the subscription was lost and not yet back (logged once)

	stop context.CancelFunc
	done sync.WaitGroup
}

// redisOptions parses the store URL and sets go-redis's time limits: its
// defaults (5 s dial with 5 attempts, 3 retries, 3 s reads) would hang a
// login for many seconds when Redis does not answer. Errors never show the
// URL, which may hold a password.
func redisOptions(rawURL string) (*redis.Options, error) {
	if !strings.HasPrefix(rawURL, "redis://") && !strings.HasPrefix(rawURL, "rediss://") && !strings.HasPrefix(rawURL, "unix://") {
		return nil, fmt.Errorf("%s is not a redis://, rediss:// or unix:// URL", redactURL(rawURL))
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid Redis URL (see https://pkg.go.dev/github.com/redis/go-redis/v9#ParseURL)", redactURL(rawURL))
	}
	opts.DialTimeout = redisIOTimeout
	opts.DialerRetries = 1
	opts.ReadTimeout = redisIOTimeout
	opts.WriteTimeout = redisIOTimeout
	opts.PoolTimeout = redisIOTimeout
	opts.MaxRetries = 1 // one retry, on a fresh connection: a pooled one may predate a Redis restart
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true
	return opts, nil
}

// redactURL shows a Redis URL without its password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the store URL"
	}
	return strconv.Quote(u.Redacted())
}

// redisNamespace names the keys of one signing key in Redis, and its store
// in the usage pool. It reveals nothing about the key.
func redisNamespace(signingKey []byte) string {
	ns, err := hkdf.Key(sha256.New, signingKey, nil, hkdfNamespace, 6)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot give
	}
	return hex.EncodeToString(ns)
}

// newRedisStore connects to Redis and loads the revocation list. It fails
// when Redis cannot be reached: an instance that started without the list
// would accept logged-out tokens.
func newRedisStore(opts *redis.Options, signingKey []byte, maxSessions int, log *zap.Logger) (*redisStore, error) {
	encKey, err := hkdf.Key(sha256.New, signingKey, nil, hkdfSessionKey, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	cache, err := newSessionCache(maxSessions)
	if err != nil {
		return nil, err
	}
	routeRedisLog()
	prefix := "wechat_auth:" + redisNamespace(signingKey) + ":"
	r := &redisStore{
		client:        redis.NewClient(opts),
		log:           log,
		cache:         cache,
		revoked:       newRevocations(nil), // Redis is the durable copy
		aead:          aead,
		sessionPrefix: prefix + "session:",
		revokedKey:    prefix + "revoked",
		channel:       prefix + "revoked",
		pending:       make(map[string]time.Time),
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	if err := r.sync(ctx); err != nil {
		r.client.Close()
		cache.Close()
		return nil, fmt.Errorf("redis at %s: loading the revocation list: %w", opts.Addr, err)
	}
	bg, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.done.Add(2)
	go r.listen(bg)
	go r.retryPending(bg)
	return r, nil
}

// storeDown wraps a Redis error so the routes answer store_unavailable.
func storeDown(op string, err error) error {
	return fmt.Errorf("redis %s: %w: %w", op, errStoreDown, err)
}

// redisSession is a session as kept in Redis.
type redisSession struct {
	AppID   string `json:"appid"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	Created int64  `json:"created"` // Unix ms
	Expires int64  `json:"expires"` // Unix ms
	// Nonce and AES-GCM ciphertext of the session_key, bound to the
	// session's sid and identity so it cannot be moved to another record.
	SealedKey []byte `json:"sealed_key"`
}

func sealAAD(sid, appid, openid, unionid string) []byte {
	return []byte("wechat_auth session v1\x00" + sid + "\x00" + appid + "\x00" + openid + "\x00" + unionid)
}

func (r *redisStore) seal(s *Session, expires time.Time) ([]byte, error) {
	nonce := make([]byte, r.aead.NonceSize(), r.aead.NonceSize()+len(s.SessionKey)+r.aead.Overhead())
	rand.Read(nonce)
	sealed := r.aead.Seal(nonce, nonce, []byte(s.SessionKey), sealAAD(s.SID, s.AppID, s.OpenID, s.UnionID))
	return json.Marshal(redisSession{
		AppID:     s.AppID,
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
		Created:   s.Created.UnixMilli(),
		Expires:   expires.UnixMilli(),
		SealedKey: sealed,
	})
}

var errDamagedSession = errors.New("session record in Redis is damaged or sealed under another key")

func (r *redisStore) open(sid string, b []byte) (*Session, time.Time, error) {
	var rs redisSession
	if err := json.Unmarshal(b, &rs); err != nil || len(rs.SealedKey) < r.aead.NonceSize() {
		return nil, time.Time{}, errDamagedSession
	}
	n := r.aead.NonceSize()
	key, err := r.aead.Open(nil, rs.SealedKey[:n], rs.SealedKey[n:], sealAAD(sid, rs.AppID, rs.OpenID, rs.UnionID))
	if err != nil {
		return nil, time.Time{}, errDamagedSession
	}
	return &Session{
		SID:        sid,
		AppID:      rs.AppID,
		OpenID:     rs.OpenID,
		UnionID:    rs.UnionID,
		SessionKey: string(key),
		Created:    time.UnixMilli(rs.Created),
	}, time.UnixMilli(rs.Expires), nil
}

// Get reads the L1 first, Redis on a miss.
func (r *redisStore) Get(ctx context.Context, sid string) (*Session, error) {
	if s, ok := r.cache.Get(sid); ok {
		countStore("get", "hit")
		return s, nil
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.sessionPrefix+sid).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		countStore("get", "miss")
		return nil, errNoSession
	case err != nil:
		countStore("get", "error")
		return nil, storeDown("GET", err)
	}
	s, expires, err := r.open(sid, b)
	if err != nil {
		r.log.Warn("session in Redis cannot be opened; treated as expired", zap.Error(err))
		countStore("get", "miss")
		return nil, errNoSession
	}
	countStore("get", "hit")
	if ttl := time.Until(expires); ttl > 0 {
		// A fill the L1 drops is read from Redis again next time.
		r.cache.SetWithTTL(sid, s, 1, ttl)
	}
	return s, nil
}

// Put writes the session to Redis, then to the L1.
func (r *redisStore) Put(ctx context.Context, s *Session, ttl time.Duration) error {
	b, err := r.seal(s, time.Now().Add(ttl))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	if err := r.client.Set(ctx, r.sessionPrefix+s.SID, b, ttl).Err(); err != nil {
		countStore("set", "error")
		return storeDown("SET", err)
	}
	cachePut(r.cache, s, ttl)
	return nil
}

func (r *redisStore) Delete(ctx context.Context, sid string) error {
	r.cache.Del(sid)
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	if err := r.client.Del(ctx, r.sessionPrefix+sid).Err(); err != nil {
		countStore("delete", "error")
		return storeDown("DEL", err)
	}
	countStore("delete", "ok")
	return nil
}

// Revoke applies the revocation here at once, then writes and publishes it.
// When Redis does not take it, it stays pending and is written as soon as
// Redis answers again (unless this instance stops first).
func (r *redisStore) Revoke(ctx context.Context, sid string, until time.Time) error {
	r.revoked.add(sid, until)
	r.cache.Del(sid)
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	if err := r.pushRevocations(ctx, map[string]time.Time{sid: until}); err != nil {
		r.mu.Lock()
		r.pending[sid] = until
		r.mu.Unlock()
		countStore("revoke", "error")
		return storeDown("revoke", err)
	}
	countStore("revoke", "ok")
	return nil
}

func (r *redisStore) Revoked(sid string, now time.Time) bool { return r.revoked.has(sid, now) }

// Reuse resizes the L1; Redis, not Caddy's storage, keeps revocations.
func (r *redisStore) Reuse(maxSessions int, _ certmagic.Storage) { resize(r.cache, maxSessions) }

// Destruct stops the subscriber and closes the connections when the last
// config using this store is unloaded.
func (r *redisStore) Destruct() error {
	r.stop()
	r.mu.Lock()
	if r.pubsub != nil {
		r.pubsub.Close() // unblocks a pending receive
	}
	r.mu.Unlock()
	r.done.Wait()
	err := r.client.Close()
	r.cache.Close()
	return err
}

// pushRevocations writes revocations to the sorted set, trims the expired
// ones and publishes each to the other instances, in one round trip.
func (r *redisStore) pushRevocations(ctx context.Context, revs map[string]time.Time) error {
	now := time.Now()
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		members := make([]redis.Z, 0, len(revs))
		for sid, until := range revs {
			members = append(members, redis.Z{Score: float64(until.UnixMilli()), Member: sid})
		}
		p.ZAdd(ctx, r.revokedKey, members...)
		p.ZRemRangeByScore(ctx, r.revokedKey, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
		for sid, until := range revs {
			p.Publish(ctx, r.channel, sid+" "+strconv.FormatInt(until.UnixMilli(), 10))
		}
		return nil
	})
	return err
}

// sync merges Redis's revocation list into this instance's set, and writes
// back the revocations only this instance knows: those Redis could not take
// when they were made, and those lost when Redis restarted without
// persistence. It runs at start and after every (re)subscription, so
// nothing published while this instance could not hear is missed.
func (r *redisStore) sync(ctx context.Context) error {
	now := time.Now()
	remote, err := r.client.ZRangeByScoreWithScores(ctx, r.revokedKey, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.UnixMilli(), 10),
		Max: "+inf",
	}).Result()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(remote))
	for _, z := range remote {
		sid, ok := z.Member.(string)
		if !ok {
			continue
		}
		known[sid] = true
		r.revoked.add(sid, time.UnixMilli(int64(z.Score)))
		r.cache.Del(sid)
	}
	missing := make(map[string]time.Time)
	r.revoked.each(func(sid string, until time.Time) {
		if !known[sid] && now.Before(until) {
			missing[sid] = until
		}
	})
	const batch = 500
	chunk := make(map[string]time.Time, batch)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := r.pushRevocations(ctx, chunk); err != nil {
			return err
		}
		r.mu.Lock()
		for sid := range chunk {
			delete(r.pending, sid)
		}
		r.mu.Unlock()
		clear(chunk)
		return nil
	}
	for sid, until := range missing {
		chunk[sid] = until
		if len(chunk) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if len(missing) > 0 {
		r.log.Info("wrote back revocations Redis did not have", zap.Int("count", len(missing)))
	}
	return nil
}

// retryPending writes the revocations Redis could not take, once a second
// until it takes them.
func (r *redisStore) retryPending(ctx context.Context) {
	defer r.done.Done()
	t := time.NewTicker(redisRetryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
		opCtx, cancel := context.WithTimeout(ctx, redisOpTimeout)
		err := r.pushRevocations(opCtx, revs)
		cancel()
		if err != nil {
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
func (r *redisStore) listen(ctx context.Context) {
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
func (r *redisStore) subscribe(ctx context.Context) (established bool) {
	ps := r.client.Subscribe(ctx)
	r.mu.Lock()
	r.pubsub = ps
	r.mu.Unlock()
	defer ps.Close()
	if err := ps.Subscribe(ctx, r.channel); err != nil {
		r.lost(err)
		return false
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, redisIdlePing)
		if ctx.Err() != nil {
			return established
		}
		var ne interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			pingCtx, cancel := context.WithTimeout(ctx, redisOpTimeout)
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
			if m.Kind != "subscribe" {
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

// lost logs, once per outage, that revocations from other instances are
// not heard for now.
func (r *redisStore) lost(err error) {
	r.mu.Lock()
	first := !r.cut
	r.cut = true
	r.mu.Unlock()
	if first {
		r.log.Warn("Redis subscription lost; logouts on other instances reach this one when it is back", zap.Error(err))
	}
}

// apply merges one published revocation.
func (r *redisStore) apply(payload string) {
	sid, ms, ok := strings.Cut(payload, " ")
	if !ok || sid == "" {
		return
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return
	}
	r.revoked.add(sid, time.UnixMilli(n))
	r.cache.Del(sid)
}

var _ sessionStore = (*redisStore)(nil)
