package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// carriedPrefix keeps in Caddy's storage, per app, when CarryMemoryStore
// last carried all of the app's user records to Redis, whichever Redis
// deployment. A record changed since (less carryMargin) is carried again;
// an older one is not: Redis may have superseded it (a ban lifted there)
// and forgotten that lift after its tombstone, and a Redis deployment
// made later must not bring back what an earlier one lifted.
const carriedPrefix = "wechat_auth/carried_to_redis"

// carryMargin is how far before the marker a record is still carried, so
// that one written by an instance whose clock is a little behind is not
// missed. It is short: a record carried again could bring back a ban
// that a Redis deployment made since no longer knows was lifted.
const carryMargin = 30 * time.Second

// carryReadTimeout bounds reading storage. A carry that did not get
// everything into Redis tries again after carryRetry, then after twice as
// long each time, up to carryRetryMax.
const (
	carryReadTimeout = 30 * time.Second
	carryRetry       = time.Minute
	carryRetryMax    = time.Hour
)

// CarryMemoryStore carries what the memory store kept in storage and still
// matters into this store, for the user records of apps: the logouts no
// token has outlived, the token horizon, and the users' cut-offs, bans
// and lifts. A deployment that moves from the memory store to Redis thus
// keeps them: without this, a token logged out before the move would
// verify again, and a banned user log in. They hold on this instance when
// CarryMemoryStore returns; they are written to Redis (each user record
// merged with Redis's, as any other write) in the background, read and
// written again, less and less often, until all of them got there. The channel
// gets the first attempt's outcome (also logged).
func (r *Store) CarryMemoryStore(storage certmagic.Storage, apps []string) <-chan error {
	out := make(chan error, 1)
	if storage == nil {
		out <- nil
		return out
	}
	c := r.readMemoryStore(storage, apps)
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		wait := carryRetry
		for first := true; ; first = false {
			err := r.writeCarried(c)
			if err != nil {
				r.log.Warn("could not carry all the memory store's user records and logouts (kept in Caddy's storage) into Redis; they hold on this instance, and the carry is tried again", zap.Error(err))
			}
			if first {
				out <- err
			}
			if err == nil {
				return
			}
			select {
			case <-r.bg.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, carryRetryMax)
			c = r.readMemoryStore(storage, apps)
		}
	}()
	return out
}

// carried is what readMemoryStore found.
type carried struct {
	storage certmagic.Storage
	read    time.Time // when storage was read: the apps' next marker
	apps    []string  // whose marker is advanced once all is written
	users   []*session.UserRecord
	logouts map[string]time.Time
	horizon time.Time
	err     error // what could not be read
}

// readMemoryStore reads what the memory store kept and holds it on this
// instance at once.
func (r *Store) readMemoryStore(storage certmagic.Storage, apps []string) *carried {
	ctx, cancel := context.WithTimeout(r.bg, carryReadTimeout)
	defer cancel()
	c := &carried{storage: storage, read: time.Now(), logouts: make(map[string]time.Time)}
	var errs []error

	rev := session.NewRevocations(storage)
	if err := rev.Load(ctx); err != nil {
		errs = append(errs, fmt.Errorf("logouts: %w", err))
	}
	rev.Each(func(sid string, until time.Time) {
		if c.read.Before(until) && !r.revoked.Has(sid, c.read) {
			r.revoked.Add(sid, until)
			r.cache.Del(sid)
			c.logouts[sid] = until
		}
	})
	if h, err := rev.LoadHorizon(ctx); err != nil {
		errs = append(errs, fmt.Errorf("token horizon: %w", err))
	} else if l := h.Latest(); l.After(c.read) {
		r.horizon.Raise(l)
		c.horizon = l
	}

	since := make(map[string]time.Time, len(apps))
	for _, app := range apps {
		marker := path.Join(carriedPrefix, app)
		b, err := storage.Load(ctx, marker)
		var t time.Time
		if err == nil {
			err = t.UnmarshalText(b)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Carrying all of the app's records again could bring back a
			// ban Redis has lifted and since forgotten.
			errs = append(errs, fmt.Errorf("read %s: %w", marker, err))
			continue
		}
		since[app] = t.Add(-carryMargin)
		c.apps = append(c.apps, app)
	}
	recs, unreadable, err := session.ReadUserRecords(ctx, storage)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("user records: %w", err))
		c.apps = nil
	case unreadable > 0:
		errs = append(errs, fmt.Errorf("%d user records could not be read", unreadable))
		c.apps = nil
	}
	for i := range recs {
		rec := &recs[i]
		s, ok := since[rec.AppID]
		if ok && (rec.Changed.After(s) || rec.BanChanged.After(s)) {
			c.users = append(c.users, r.users.Merge(rec))
		}
	}
	c.err = errors.Join(errs...)
	return c
}

// writeCarried writes what readMemoryStore found to Redis, logouts first,
// and advances the apps' markers once every user record got there.
func (r *Store) writeCarried(c *carried) error {
	ctx, cancel := context.WithTimeout(r.bg, carryReadTimeout)
	defer cancel()
	errs := []error{c.err}
	if len(c.logouts) > 0 {
		// sync writes the revocations held here that Redis lacks; those
		// it does not take are retried every second (retryPending).
		if err := r.sync(ctx); err != nil {
			r.mu.Lock()
			for sid, until := range c.logouts {
				r.pending[sid] = until
			}
			r.mu.Unlock()
			errs = append(errs, fmt.Errorf("logouts: %w", err))
		} else {
			r.log.Info("carried the memory store's logouts into Redis", zap.Int("count", len(c.logouts)))
		}
	}
	if !c.horizon.IsZero() {
		if err := r.saveHorizon(ctx, c.horizon); err != nil {
			errs = append(errs, err)
		}
	}
	written := 0
	var failed error
	for _, rec := range c.users {
		opCtx, cancel := context.WithTimeout(r.bg, OpTimeout)
		err := r.writeBackUser(opCtx, rec, false)
		cancel()
		if err != nil {
			r.queueUser(rec) // written once Redis answers (retryUsers)
			failed = err
			continue
		}
		written++
	}
	if written > 0 {
		r.log.Info("carried the memory store's user records into Redis", zap.Int("count", written))
	}
	if failed != nil {
		errs = append(errs, fmt.Errorf("user records: %w", failed))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	b, _ := c.read.MarshalText()
	for _, app := range slices.Compact(slices.Sorted(slices.Values(c.apps))) {
		if err := c.storage.Store(ctx, path.Join(carriedPrefix, app), b); err != nil {
			return err
		}
	}
	return nil
}
