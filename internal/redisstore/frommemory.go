package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// A deployment that moves from the memory store to Redis keeps what the
// memory store kept in Caddy's storage and still matters: the logouts no
// token has outlived, the token horizon, and the users' cut-offs, bans and
// lifts. Without them a token logged out before the move would verify
// again, and a banned user log in.

// carriedPrefix keeps in Caddy's storage, per app, when a carry last got
// all of the app's user records into Redis, whichever Redis deployment. A
// record changed since (less carryMargin) is carried again; an older one
// is not: Redis may have superseded it (a ban lifted there) and forgotten
// that lift after its tombstone, and a Redis deployment made later must
// not bring back what an earlier one lifted.
const carriedPrefix = "wechat_auth/carried_to_redis"

// carryMargin is how far before the marker a record is still carried, so
// that one written by an instance whose clock is a little behind is not
// missed. It is short: a record carried again could bring back a ban
// that a Redis deployment made since no longer knows was lifted.
const carryMargin = 30 * time.Second

// carryReadTimeout bounds one pass's reading and writing. A carry that
// did not get everything into Redis makes another pass after carryRetry,
// then after twice as long each time, up to carryRetryMax.
const carryReadTimeout = 30 * time.Second

var carryRetry, carryRetryMax = time.Minute, time.Hour // tests shorten them

// Carry writes into Redis what HoldMemoryStore found, once the config
// runs (Start).
type Carry struct {
	r       *Store
	storage certmagic.Storage
	apps    []string
}

// HoldMemoryStore reads what the memory store kept in storage (logouts,
// the token horizon, and the user records of apps changed since the
// app's marker) and holds it on this instance at once. It returns the
// carry that writes it to Redis, to start once the config runs: `caddy
// validate` provisions and must write nothing. A store with nothing in
// storage reads two empty folders.
func (r *Store) HoldMemoryStore(storage certmagic.Storage, apps []string) *Carry {
	if storage == nil {
		return nil
	}
	r.readMemoryStore(storage, apps, nil, nil, nil, true)
	return &Carry{r: r, storage: storage, apps: apps}
}

// carrySettle is how long after its first complete pass a carry makes
// one more: the config before may have taken a logout or a ban until it
// stopped.
var carrySettle = carryMargin

// Start writes the carry into Redis in the background, reading storage
// again first (what the config before took meanwhile), and makes further
// passes until everything got there or the store is destroyed, and one
// more a little later. A store runs one carry at a time: a carry started
// while another runs adds its apps and storage to it, and has it make
// another pass. The channel gets the first pass's outcome (also logged),
// or nil at once when another carry took it over.
func (c *Carry) Start() <-chan error {
	r := c.r
	out := make(chan error, 1)
	r.carryMu.Lock()
	for _, a := range c.apps {
		r.carryApps[a] = true
	}
	r.carryStorage = c.storage
	r.carryGen++
	if r.carrying {
		r.carryMu.Unlock()
		select {
		case r.carryWake <- struct{}{}:
		default:
		}
		out <- nil
		return out
	}
	r.carrying = true
	r.carryMu.Unlock()
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		r.carryLoop(out)
	}()
	return out
}

// carryLoop makes the carry's passes.
func (r *Store) carryLoop(out chan<- error) {
	var (
		since     map[string]time.Time // per app; else its marker
		retry     []string             // user record keys not read yet
		retryFrom map[string]time.Time // per app, what its first pass carried
		storage   certmagic.Storage
	)
	wait := carryRetry
	settled := false
	for first := true; ; first = false {
		r.carryMu.Lock()
		apps := slices.Collect(maps.Keys(r.carryApps))
		gen := r.carryGen
		if r.carryStorage != storage {
			// Another config's storage: its own markers and keys.
			storage, since, retry, retryFrom = r.carryStorage, map[string]time.Time{}, nil, map[string]time.Time{}
		}
		select { // a wake for a start this pass takes in
		case <-r.carryWake:
		default:
		}
		r.carryMu.Unlock()
		p := r.readMemoryStore(storage, apps, since, retry, retryFrom, false)
		err := r.writeCarried(p)
		if err != nil {
			r.log.Warn("could not carry all the memory store's user records and logouts (kept in Caddy's storage) into Redis; they hold on this instance, and the carry tries again", zap.Error(err))
		}
		if first {
			out <- err
		}
		// The next pass: what changed since this one read, and the keys
		// it could not read; an app whose marker it could not read, or
		// added since, reads its marker.
		since = make(map[string]time.Time, len(p.apps))
		for _, a := range p.apps {
			since[a] = p.read.Add(-carryMargin)
		}
		// A key read again is carried by the first pass's measure (the
		// app's marker): older records stay where Redis put them.
		for a, t := range p.from {
			if _, ok := retryFrom[a]; !ok {
				retryFrom[a] = t
			}
		}
		retry = p.unread
		complete := err == nil && len(p.unread) == 0
		delay := time.Duration(0)
		r.carryMu.Lock()
		switch {
		case complete && gen != r.carryGen:
			// Started again meanwhile: another pass at once, and one more
			// a little after that.
			settled = false
		case complete && settled:
			clear(r.carryApps)
			r.carrying = false
			r.carryMu.Unlock()
			return
		case complete:
			settled, delay = true, carrySettle
		default:
			delay, wait = wait, min(2*wait, carryRetryMax)
		}
		r.carryMu.Unlock()
		if delay > 0 {
			select {
			case <-r.bg.Done():
				return
			case <-r.carryWake:
				settled = false // a start: pass again, and settle after
			case <-time.After(delay):
			}
		}
	}
}

// carried is what one pass read.
type carried struct {
	storage   certmagic.Storage
	storageID string               // storage's String, if any: which storage, across configs
	from      map[string]time.Time // per app, what changed since was carried
	read      time.Time            // when storage was read: the apps' next marker
	apps      []string             // whose marker is advanced once the pass is written
	users     []*session.UserRecord
	logouts   map[string]time.Time // sid → until: held here, maybe not yet in Redis
	horizon   time.Time
	unread    []string // user record keys that could not be read
	err       error    // what else could not be read
}

// readMemoryStore reads what the memory store kept and holds it on this
// instance at once: the logouts and the horizon, and the user records of
// apps changed since the app's time in since (else its marker, less
// carryMargin); a record at one of keys (a pass before could not read
// it) by the app's time in keysFrom instead.
func (r *Store) readMemoryStore(storage certmagic.Storage, apps []string, since map[string]time.Time, keys []string, keysFrom map[string]time.Time, hold bool) *carried {
	ctx, cancel := context.WithTimeout(r.bg, carryReadTimeout)
	defer cancel()
	c := &carried{storage: storage, read: time.Now(), logouts: make(map[string]time.Time)}
	var errs []error

	rev := session.NewRevocations(storage)
	switch n, err := rev.LoadCounting(ctx); {
	case err != nil:
		errs = append(errs, fmt.Errorf("logouts: %w", err))
	case n > 0:
		errs = append(errs, fmt.Errorf("%d logouts could not be read", n))
	}
	rev.Each(func(sid string, until time.Time) {
		if !c.read.Before(until) {
			return
		}
		if !r.revoked.Has(sid, c.read) {
			r.revoked.Add(sid, until)
			r.cache.Del(sid)
		}
		c.logouts[sid] = until
	})
	if h, err := rev.LoadHorizon(ctx); err != nil {
		errs = append(errs, fmt.Errorf("token horizon: %w", err))
	} else if l := h.Latest(); l.After(c.read) {
		r.horizon.Raise(l)
		c.horizon = l
	}

	from := make(map[string]time.Time, len(apps))
	for _, app := range apps {
		if t, ok := since[app]; ok {
			from[app] = t
			continue
		}
		marker := path.Join(carriedPrefix, app)
		b, err := storage.Load(ctx, marker)
		var t time.Time
		if err == nil {
			err = t.UnmarshalText(b)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Carrying all of the app's records again could bring
			// back a ban Redis has lifted and since forgotten.
			errs = append(errs, fmt.Errorf("read %s: %w", marker, err))
			continue
		}
		from[app] = t.Add(-carryMargin)
	}
	for app := range from {
		c.apps = append(c.apps, app)
	}
	c.from = from
	// Once all of an app's records were carried, a hold (provisioning,
	// every reload) reads them again only after a memory store of this
	// process wrote one; the carry's passes, in the background, always
	// read (another process sharing storage may have written). Storage is
	// told apart by its String, when it has one.
	read := true
	if st, ok := storage.(fmt.Stringer); ok {
		c.storageID = st.String()
		if hold {
			read = false
			r.carryMu.Lock()
			for app := range from {
				if t, ok := r.usersRead[usersReadKey(c.storageID, app)]; !ok || session.UserWrittenSince(t) {
					read = true
				}
			}
			r.carryMu.Unlock()
		}
	}
	var recs map[string]session.UserRecord
	if read {
		var err error
		recs, c.unread, err = session.ReadUserRecords(ctx, storage)
		if err != nil {
			errs = append(errs, fmt.Errorf("user records: %w", err))
			c.apps = nil
		}
	}
	retried := make(map[string]bool, len(keys))
	for _, k := range keys {
		retried[k] = true
	}
	for key, rec := range recs {
		measure := from
		if retried[key] {
			measure = keysFrom // not read by the pass before
		}
		if carriedSince(&rec, measure) {
			c.users = append(c.users, r.users.Merge(&rec))
		}
	}
	if len(c.unread) > 0 {
		errs = append(errs, fmt.Errorf("%d user records could not be read", len(c.unread)))
	}
	c.err = errors.Join(errs...)
	return c
}

// usersReadKey is the key of Store.usersRead for an app's records in the
// storage whose String is storageID.
func usersReadKey(storageID, app string) string { return storageID + "\x00" + app }

// carryLogouts writes logouts to Redis. Those Redis did not take are
// tried again every second (retryPending), as are those no replica
// confirmed.
func (r *Store) carryLogouts(ctx context.Context, logouts map[string]time.Time) error {
	unwritten, err := r.pushInBatches(ctx, logouts)
	if err != nil {
		r.mu.Lock()
		maps.Copy(r.pending, unwritten)
		r.mu.Unlock()
	}
	return err
}

// carriedSince reports whether rec is of an app of from and changed since
// the app's time there.
func carriedSince(rec *session.UserRecord, from map[string]time.Time) bool {
	s, ok := from[rec.AppID]
	return ok && (rec.Changed.After(s) || rec.BanChanged.After(s))
}

// writeCarried writes what a pass read to Redis, logouts first, and
// advances the apps' markers once every user record got there.
func (r *Store) writeCarried(c *carried) error {
	ctx, cancel := context.WithTimeout(r.bg, carryReadTimeout)
	defer cancel()
	errs := []error{c.err}
	if len(c.logouts) > 0 {
		if err := r.carryLogouts(ctx, c.logouts); err != nil {
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
	switch {
	case failed != nil:
		errs = append(errs, fmt.Errorf("user records: %w", failed))
	case len(c.unread) > 0:
		// Not past a record it has not carried: a restart before the
		// next pass must still carry it.
	default:
		b, _ := c.read.MarshalText()
		for _, app := range c.apps {
			if err := c.storage.Store(ctx, path.Join(carriedPrefix, app), b); err != nil {
				errs = append(errs, err)
				continue
			}
			if c.storageID != "" {
				r.carryMu.Lock()
				r.usersRead[usersReadKey(c.storageID, app)] = c.read
				r.carryMu.Unlock()
			}
		}
	}
	return errors.Join(errs...)
}
