package wechatauth

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// revocationPrefix is where revocations are kept in Caddy's storage, one
// key per session, so a restart does not revive logged-out tokens.
const revocationPrefix = "wechat_auth/revoked"

// revocations is the exact set of revoked sessions: sid → the time after
// which every token of that session has expired anyway. Unlike the session
// cache it never drops an entry early: losing one would revive a token.
type revocations struct {
	mu        sync.RWMutex
	until     map[string]time.Time
	lastSweep int

	storage certmagic.Storage // nil: kept in memory only (Redis keeps them instead)
}

func newRevocations(storage certmagic.Storage) *revocations {
	return &revocations{until: make(map[string]time.Time), storage: storage}
}

// has reports whether sid is revoked at now. It is on the hot path.
func (r *revocations) has(sid string, now time.Time) bool {
	r.mu.RLock()
	until, ok := r.until[sid]
	r.mu.RUnlock()
	return ok && now.Before(until)
}

// add revokes sid until until, and sweeps expired entries once the set has
// doubled since the last sweep.
func (r *revocations) add(sid string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.until[sid]; !ok || until.After(old) {
		r.until[sid] = until
	}
	if len(r.until) > 2*r.lastSweep+64 {
		now := time.Now()
		for k, u := range r.until {
			if !now.Before(u) {
				delete(r.until, k)
			}
		}
		r.lastSweep = len(r.until)
	}
}

// persist keeps a revocation in Caddy's storage.
func (r *revocations) persist(ctx context.Context, sid string, until time.Time) error {
	if r.storage == nil {
		return nil
	}
	return r.storage.Store(ctx, path.Join(revocationPrefix, sid), []byte(strconv.FormatInt(until.Unix(), 10)))
}

// load reads the revocations kept in storage, deleting the expired ones.
func (r *revocations) load(ctx context.Context) error {
	if r.storage == nil {
		return nil
	}
	keys, err := r.storage.List(ctx, revocationPrefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	for _, key := range keys {
		b, err := r.storage.Load(ctx, key)
		if err != nil {
			continue // deleted meanwhile by another instance
		}
		sec, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			continue
		}
		until := time.Unix(sec, 0)
		if !now.Before(until) {
			_ = r.storage.Delete(ctx, key)
			continue
		}
		r.add(path.Base(key), until)
	}
	return nil
}
