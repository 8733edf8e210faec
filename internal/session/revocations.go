package session

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

// horizonKey is where the memory store keeps its token horizon in Caddy's
// storage, so a restart still revokes long enough after a token_ttl cut.
const horizonKey = "wechat_auth/token_horizon"

// Revocations is the exact set of revoked sessions: sid → the time after
// which every token of that session has expired anyway. Unlike the session
// cache it never drops an entry early: losing one would revive a token.
//
// Has runs on every proxied request and takes no lock; add (a logout) is
// serialised by mu.
type Revocations struct {
	until sync.Map // sid → time.Time

	mu        sync.Mutex // serialises add
	n         int        // entries in until
	lastSweep int

	storageMu sync.Mutex
	storage   certmagic.Storage // nil: kept in memory only (Redis keeps them instead)
}

func NewRevocations(storage certmagic.Storage) *Revocations {
	return &Revocations{storage: storage}
}

// Has reports whether sid is revoked at now. It is on the hot path.
func (r *Revocations) Has(sid string, now time.Time) bool {
	v, ok := r.until.Load(sid)
	return ok && now.Before(v.(time.Time))
}

// Each calls f for every revocation held, expired or not.
func (r *Revocations) Each(f func(sid string, until time.Time)) {
	r.until.Range(func(k, v any) bool {
		f(k.(string), v.(time.Time))
		return true
	})
}

// Add revokes sid until until, and sweeps expired entries once the set has
// doubled since the last sweep. Their storage keys go too, in the
// background, so storage does not grow with every logout ever made.
func (r *Revocations) Add(sid string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.until.Load(sid)
	if !ok {
		r.n++
	}
	if !ok || until.After(old.(time.Time)) {
		r.until.Store(sid, until)
	}
	if r.n > 2*r.lastSweep+64 {
		now := time.Now()
		var expired []string
		r.Each(func(k string, u time.Time) {
			if !now.Before(u) {
				r.until.Delete(k)
				expired = append(expired, k)
			}
		})
		r.n -= len(expired)
		r.lastSweep = r.n
		if storage := r.CurrentStorage(); storage != nil && len(expired) > 0 {
			go func() {
				for _, k := range expired {
					_ = storage.Delete(context.Background(), path.Join(revocationPrefix, k))
				}
			}()
		}
	}
}

// SetStorage points persistence at the storage of the newest config: a
// reload may change Caddy's storage, and the old one is cleaned up.
func (r *Revocations) SetStorage(storage certmagic.Storage) {
	r.storageMu.Lock()
	defer r.storageMu.Unlock()
	if r.storage != nil {
		r.storage = storage
	}
}

func (r *Revocations) CurrentStorage() certmagic.Storage {
	r.storageMu.Lock()
	defer r.storageMu.Unlock()
	return r.storage
}

// Persist keeps a revocation in Caddy's storage.
func (r *Revocations) Persist(ctx context.Context, sid string, until time.Time) error {
	storage := r.CurrentStorage()
	if storage == nil {
		return nil
	}
	return storage.Store(ctx, path.Join(revocationPrefix, sid), []byte(strconv.FormatInt(until.Unix(), 10)))
}

// Load reads the revocations kept in storage, deleting the expired ones.
// A key it cannot read is passed over.
func (r *Revocations) Load(ctx context.Context) error {
	_, err := r.LoadCounting(ctx)
	return err
}

// LoadCounting is Load, and counts the keys it could not read (apart from
// those deleted meanwhile by another instance).
func (r *Revocations) LoadCounting(ctx context.Context) (unreadable int, err error) {
	storage := r.CurrentStorage()
	if storage == nil {
		return 0, nil
	}
	keys, err := storage.List(ctx, revocationPrefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for _, key := range keys {
		b, err := storage.Load(ctx, key)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				unreadable++
			}
			continue
		}
		sec, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			continue
		}
		until := time.Unix(sec, 0)
		if !now.Before(until) {
			_ = storage.Delete(ctx, key)
			continue
		}
		r.Add(path.Base(key), until)
	}
	return unreadable, nil
}

// LoadHorizon returns the token horizon kept in storage (none: now), saving
// to the same storage when it moves.
func (r *Revocations) LoadHorizon(ctx context.Context) (*Horizon, error) {
	h := NewHorizon(func(ctx context.Context, until time.Time) error {
		storage := r.CurrentStorage()
		if storage == nil {
			return nil
		}
		return storage.Store(ctx, horizonKey, []byte(strconv.FormatInt(until.Unix(), 10)))
	})
	storage := r.CurrentStorage()
	if storage == nil {
		return h, nil
	}
	b, err := storage.Load(ctx, horizonKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return h, nil
	case err != nil:
		return nil, err
	}
	if sec, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		h.Raise(time.Unix(sec, 0))
	}
	return h, nil
}
