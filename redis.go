package wechatauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
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
	_, err = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Set(ctx, r.sessionPrefix+s.SID, b, ttl)
		r.addUserSession(ctx, pipe, s, ttl)
		return nil
	})
	if err != nil {
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

var _ sessionStore = (*redisStore)(nil)
