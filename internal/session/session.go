// Package session keeps logins: the session, the in-memory store, the
// revocation list, the token horizon, users' records (bans, cut-offs) and
// the per-user session index. It knows neither HTTP nor tokens.
package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/dgraph-io/ristretto/v2"
)

// Session is what the server keeps for a login. The session_key never
// leaves the server.
type Session struct {
	SID        string    `json:"sid"`
	AppID      string    `json:"appid"`
	OpenID     string    `json:"openid"`
	UnionID    string    `json:"unionid,omitempty"`
	SessionKey string    `json:"session_key"`
	Created    time.Time `json:"created"`

	expires time.Time // in the memory store: when its time there ends
}

var (
	ErrNoSession = errors.New("session not found")
	ErrStoreDown = errors.New("session store unavailable")
)

// Store keeps sessions and the revocation list. Get, Put, Delete and
// Revoke may reach the network (Redis); Revoked never does, because it runs
// on every proxied request.
type Store interface {
	// Get returns the session, ErrNoSession, or an error wrapping
	// ErrStoreDown.
	Get(ctx context.Context, sid string) (*Session, error)
	Put(ctx context.Context, s *Session, ttl time.Duration) error
	Delete(ctx context.Context, sid string) error
	// Revoke refuses every token of the session until until. When the
	// store cannot promise that everywhere it still refuses it locally and
	// returns an error wrapping ErrStoreDown.
	Revoke(ctx context.Context, sid string, until time.Time) error
	Revoked(sid string, now time.Time) bool
	// ExtendHorizon records, before a token expiring at exp is handed
	// out, that tokens may live that long; an error means the token must
	// not be issued.
	ExtendHorizon(ctx context.Context, exp time.Time) error
	// Horizon returns a time that no token issued so far, by any instance
	// sharing the store, outlives. A logout revokes until then.
	Horizon(ctx context.Context) (time.Time, error)
	// Reuse adapts a store taken over from the previous config: its
	// in-memory capacity (when maxSessions > 0) and Caddy's storage.
	Reuse(maxSessions int, storage certmagic.Storage)
	// NewestSession returns the user's newest live session (the last
	// login not logged out or revoked), ErrNoUserSession, or an error
	// wrapping ErrStoreDown.
	NewestSession(ctx context.Context, appid, openid string) (*Session, error)
	// SetSessionKey replaces the session_key of a stored session.
	SetSessionKey(ctx context.Context, s *Session, key string) error
}

// Default capacity of the in-memory session store.
const DefaultMaxSessions = 100_000

// MaxSessionsLimit bounds max_sessions: the cache's admission counters
// take about 40 bytes per session of capacity before any is stored, and
// ten times the limit would be gigabytes.
const MaxSessionsLimit = 10_000_000

// Memory keeps sessions in an in-process ristretto cache. It lives in
// a caddy.UsagePool, so a config reload keeps every session.
type Memory struct {
	cache   *ristretto.Cache[string, *Session]
	refused *Refused // the newest sessions the cache refused (refused.go)
	revoked *Revocations
	users   *Users // cut-offs and bans (memoryusers.go)
	horizon *Horizon
	latest  *UserIndex // each user's latest sessions (userindex.go)
}

func NewMemory(maxSessions int, storage certmagic.Storage) (*Memory, error) {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	aside := asideOf(maxSessions)
	refused := NewRefused(aside)
	cache, err := NewCache(maxSessions-aside, refused.setAside)
	if err != nil {
		return nil, err
	}
	rev := NewRevocations(storage)
	if err := rev.Load(context.Background()); err != nil {
		cache.Close()
		return nil, err
	}
	users, err := LoadUsers(context.Background(), storage)
	if err != nil {
		cache.Close()
		return nil, err
	}
	horizon, err := rev.LoadHorizon(context.Background())
	if err != nil {
		cache.Close()
		return nil, err
	}
	return &Memory{cache: cache, refused: refused, revoked: rev, users: users, latest: NewUserIndex(), horizon: horizon}, nil
}

// NewCache makes the ristretto cache that holds sessions, each at
// cost 1, so maxSessions is a number of sessions. IgnoreInternalCost keeps
// ristretto's own per-item overhead out of that count. onEvict, when set,
// gets each session ristretto evicts to make room.
func NewCache(maxSessions int, onEvict func(*Session)) (*ristretto.Cache[string, *Session], error) {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	cfg := &ristretto.Config[string, *Session]{
		NumCounters:        int64(maxSessions) * 10,
		MaxCost:            int64(maxSessions),
		BufferItems:        64,
		IgnoreInternalCost: true,
	}
	if onEvict != nil {
		cfg.OnEvict = func(item *ristretto.Item[*Session]) {
			if item.Value != nil {
				onEvict(item.Value)
			}
		}
	}
	return ristretto.NewCache(cfg)
}

func (m *Memory) Get(_ context.Context, sid string) (*Session, error) {
	s, ok := m.cache.Get(sid)
	if !ok {
		s, _, ok = m.refused.Get(sid, time.Now())
	}
	if !ok {
		metrics.CountStore("get", "miss")
		return nil, ErrNoSession
	}
	metrics.CountStore("get", "hit")
	return s, nil
}

func (m *Memory) Put(_ context.Context, s *Session, ttl time.Duration) error {
	m.put(s, ttl)
	m.latest.Add(s, ttl)
	return nil
}

// put stores s in the cache, or, when the cache refuses it, among the
// newest sessions set aside (counted as set "aside").
func (m *Memory) put(s *Session, ttl time.Duration) {
	cp := *s
	cp.expires = time.Now().Add(ttl)
	if CachePut(m.cache, &cp, ttl) {
		m.refused.deleteOlder(s.SID, &cp)
		return
	}
	m.refused.Put(&cp)
	metrics.CountStore("set", "aside")
}

// CachePut stores a session and waits until ristretto has applied the Set,
// so the next request finds it, and reports whether it did. ristretto may
// drop a Set under contention or refuse it at capacity; both are counted
// as drops.
func CachePut(c *ristretto.Cache[string, *Session], s *Session, ttl time.Duration) bool {
	ok := c.SetWithTTL(s.SID, s, 1, ttl)
	if !ok {
		c.Wait()
		ok = c.SetWithTTL(s.SID, s, 1, ttl)
	}
	c.Wait()
	if ok {
		// GetTTL looks without counting a use: a Get here would give every
		// stored session a use, and at capacity ristretto's admission
		// policy would then refuse each new session in favour of old ones
		// nobody reads.
		_, ok = c.GetTTL(s.SID)
	}
	if ok {
		metrics.CountStore("set", "ok")
	} else {
		metrics.CountStore("set", "dropped")
	}
	return ok
}

func (m *Memory) Delete(_ context.Context, sid string) error {
	m.cache.Del(sid)
	// Once ristretto has applied what came before, an eviction of sid
	// included, nothing can set it aside again.
	m.cache.Wait()
	m.refused.Delete(sid)
	metrics.CountStore("delete", "ok")
	return nil
}

func (m *Memory) Revoke(ctx context.Context, sid string, until time.Time) error {
	m.revoked.Add(sid, until)
	if err := m.revoked.Persist(ctx, sid, until); err != nil {
		metrics.CountStore("revoke", "error")
		return fmt.Errorf("keep revocation in storage: %w", err)
	}
	metrics.CountStore("revoke", "ok")
	return nil
}

func (m *Memory) Revoked(sid string, now time.Time) bool { return m.revoked.Has(sid, now) }

func (m *Memory) ExtendHorizon(ctx context.Context, exp time.Time) error {
	return m.horizon.Extend(ctx, exp)
}

func (m *Memory) Horizon(context.Context) (time.Time, error) { return m.horizon.Latest(), nil }

func (m *Memory) Reuse(maxSessions int, storage certmagic.Storage) {
	if maxSessions > 0 {
		aside := asideOf(maxSessions)
		Resize(m.cache, maxSessions-aside)
		m.refused.Resize(aside)
	}
	m.revoked.SetStorage(storage)
}

// Resize changes the capacity of a session cache that outlives a reload, so
// nobody is logged out. Only an explicit max_sessions resizes: a config
// that leaves it out does not shrink a cache another site sized.
func Resize(c *ristretto.Cache[string, *Session], maxSessions int) {
	if maxSessions > 0 {
		c.UpdateMaxCost(int64(maxSessions))
	}
}

// Destruct frees the cache when the last config using it is unloaded.
func (m *Memory) Destruct() error {
	m.refused.shutDown()
	m.cache.Close()
	return nil
}

// Interface guards
var (
	_ Store            = (*Memory)(nil)
	_ UserStore        = (*Memory)(nil)
	_ caddy.Destructor = (*Memory)(nil)
)
