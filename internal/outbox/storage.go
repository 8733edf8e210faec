package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// storageStore keeps the outbox in Caddy's storage, one file per event,
// and the deduplication records in memory and, written after the answer,
// in the storage too (idRecords): an instance that restarts still
// delivers what it queued and still answers WeChat's retries of what it
// accepted as duplicates, but for those accepted in the last moments
// before a crash (at least once).
type storageStore struct {
	storage certmagic.Storage
	prefix  string
	log     *zap.Logger

	mu        sync.Mutex
	ids       map[string]memClaim
	events    map[string]*scheduled
	lastPurge time.Time

	records    *idRecords // the event ids accepted
	keyRecords *idRecords // the keys given to Remember
	// unread: the remembered keys' records have not all been read since
	// the store was made; unreadUntil, when set, is when every file that
	// could not be read has expired (the expiry in its name), and with it
	// what it holds.
	unread      bool
	unreadUntil time.Time

	// Owned by due (the polling loop).
	lastSweep time.Time

	// Owned by due (the polling loop) and open.
	lastScan time.Time
	unusable map[string]bool // files that cannot be read as events (logged once)
}

// rescanEvery is how often the outbox looks in the storage for event files
// it does not know. An outbox that a config reload replaced may still
// queue the event whose first delivery was under way, after its successor
// read the storage; so may another instance sharing the storage. Such an
// event was acknowledged to WeChat: it must not wait for the next start.
const rescanEvery = 10 * time.Second

type memClaim struct {
	token  string // "" once done
	until  time.Time
	expiry time.Time
}

type scheduled struct {
	kind string
	name string // the storage key
	due  time.Time
	held bool
}

// StorageStore keeps the outbox in storage (Caddy's, as
// caddy.Context.Storage gives it) under prefix, one file per event, and
// the accepted ids in memory and in record files beside it (idRecords).
// At start it delivers what the event files hold and reads the records,
// and it looks again every rescanEvery for files written by others. A
// storage lock keeps two instances sharing the storage off one event.
func StorageStore(storage certmagic.Storage, prefix string, log *zap.Logger) Store {
	if log == nil {
		log = zap.NewNop()
	}
	s := &storageStore{
		storage: storage, prefix: strings.TrimSuffix(prefix, "/"), log: log,
		ids: make(map[string]memClaim), events: make(map[string]*scheduled),
		unusable: make(map[string]bool), unread: true,
	}
	s.records = newIDRecords(storage, recordDir(s.prefix, "_ids"), "event ids", log, s.learn)
	s.keyRecords = newIDRecords(storage, recordDir(s.prefix, "_remembered"), "remembered keys", log, s.learn)
	return s
}

// learn takes id records read from the storage.
func (s *storageStore) learn(records map[string]time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range records {
		s.knownLocked(k, exp, now)
	}
}

// knownLocked makes key, accepted elsewhere or before a restart, a
// duplicate until expiry, unless this outbox holds it already (a claim
// under way, or a record not expired). s.mu is held.
func (s *storageStore) knownLocked(key string, expiry, now time.Time) {
	if c, ok := s.ids[key]; !ok || !now.Before(c.expiry) {
		s.ids[key] = memClaim{expiry: expiry}
	}
}

// name is the storage key of an event: the id hashed, since ids may hold
// any character and some storages fold case.
func (s *storageStore) name(kind, key string) string {
	h := sha256.Sum256([]byte(key))
	return path.Join(s.prefix, kind, hex.EncodeToString(h[:16])+".json")
}

func (s *storageStore) claim(_ context.Context, key string, lease, keep time.Duration) (claimState, string, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastPurge) > time.Minute {
		for k, c := range s.ids {
			if now.After(c.expiry) {
				delete(s.ids, k)
			}
		}
		s.lastPurge = now
	}
	if c, ok := s.ids[key]; ok && now.Before(c.expiry) {
		if c.token == "" {
			return claimDuplicate, "", nil
		}
		if now.Before(c.until) {
			return claimBusy, "", nil
		}
	}
	token := newToken()
	s.ids[key] = memClaim{token: token, until: now.Add(lease), expiry: now.Add(keep)}
	return claimNew, token, nil
}

func (s *storageStore) done(_ context.Context, key string, keep time.Duration) error {
	expiry := time.Now().Add(keep)
	s.mu.Lock()
	s.ids[key] = memClaim{expiry: expiry}
	s.mu.Unlock()
	s.records.add(key, expiry)
	return nil
}

func (s *storageStore) release(_ context.Context, key, token string) error {
	s.mu.Lock()
	if c, ok := s.ids[key]; ok && c.token == token {
		delete(s.ids, key)
	}
	s.mu.Unlock()
	return nil
}

func (s *storageStore) enqueue(ctx context.Context, key string, r *record, delay, keep time.Duration) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := s.name(r.Kind, key)
	if err := s.storage.Store(ctx, name, data); err != nil {
		return err
	}
	expiry := time.Now().Add(keep)
	s.mu.Lock()
	s.events[key] = &scheduled{kind: r.Kind, name: name, due: time.Now().Add(delay)}
	s.ids[key] = memClaim{expiry: expiry}
	s.mu.Unlock()
	// The queued file is the event's record until it is delivered; this
	// one outlives it.
	s.records.add(key, expiry)
	return nil
}

func (s *storageStore) due(ctx context.Context, n int, lease time.Duration) ([]*claimed, error) {
	now := time.Now()
	if now.Sub(s.lastScan) >= rescanEvery {
		if err := s.scan(ctx); err != nil {
			s.log.Warn("outbox: cannot look for events in the storage", zap.Error(err))
		}
	}
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.lastSweep = now
		s.records.startSweep(now)
		s.keyRecords.startSweep(now)
	}
	var picked []string
	s.mu.Lock()
	for k, e := range s.events {
		if len(picked) == n {
			break
		}
		if !e.held && !now.Before(e.due) {
			e.held = true
			picked = append(picked, k)
		}
	}
	s.mu.Unlock()
	var out []*claimed
	for _, k := range picked {
		c, err := s.take(ctx, k, lease)
		if err != nil {
			s.log.Warn("outbox: cannot claim an event", zap.Error(err))
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// take locks a picked event in the storage and reads it; nil when another
// instance holds it (due again after lease) or it is gone.
func (s *storageStore) take(ctx context.Context, key string, lease time.Duration) (*claimed, error) {
	s.mu.Lock()
	e := s.events[key]
	s.mu.Unlock()
	if e == nil {
		return nil, nil
	}
	ok, err := s.tryLock(ctx, e.name)
	if err != nil || !ok {
		s.mu.Lock()
		e.held, e.due = false, time.Now().Add(lease)
		s.mu.Unlock()
		return nil, err
	}
	data, err := s.storage.Load(ctx, e.name)
	r := new(record)
	if err == nil {
		err = json.Unmarshal(data, r)
		if err != nil {
			s.log.Error("outbox: unreadable event removed", zap.String("file", e.name), zap.Error(err))
			s.storage.Delete(ctx, e.name)
		}
	}
	if err != nil {
		s.storage.Unlock(ctx, e.name)
		s.mu.Lock()
		if errors.Is(err, fs.ErrNotExist) || r.ID == "" {
			delete(s.events, key)
			err = nil
		} else {
			e.held, e.due = false, time.Now().Add(lease)
		}
		s.mu.Unlock()
		return nil, err
	}
	// Claimed until the lease ends, as in Redis: an event whose attempt
	// can neither remove nor reschedule it is due again then, not at the
	// next poll.
	s.mu.Lock()
	e.due = time.Now().Add(lease)
	s.mu.Unlock()
	return &claimed{key: key, rec: r, hold: e.name}, nil
}

// tryLock takes the storage lock for name without waiting where the
// storage can; others get a short wait.
func (s *storageStore) tryLock(ctx context.Context, name string) (bool, error) {
	if tl, ok := s.storage.(certmagic.TryLocker); ok {
		return tl.TryLock(ctx, name)
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := s.storage.Lock(ctx, name); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (s *storageStore) retry(ctx context.Context, c *claimed, delay time.Duration) error {
	defer s.storage.Unlock(ctx, c.hold)
	data, err := json.Marshal(c.rec)
	if err == nil {
		err = s.storage.Store(ctx, c.hold, data)
	}
	s.mu.Lock()
	if e, ok := s.events[c.key]; ok {
		e.held, e.due = false, time.Now().Add(delay)
	}
	s.mu.Unlock()
	return err
}

func (s *storageStore) remove(ctx context.Context, c *claimed) error {
	defer s.storage.Unlock(ctx, c.hold)
	if err := s.storage.Delete(ctx, c.hold); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.mu.Lock()
		if e, ok := s.events[c.key]; ok {
			e.held = false
		}
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	delete(s.events, c.key)
	s.mu.Unlock()
	return nil
}

func (s *storageStore) pending(context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int)
	for _, e := range s.events {
		out[e.kind]++
	}
	return out, nil
}

// open reads the id records and schedules every event file in the
// storage, due at once.
func (s *storageStore) open(ctx context.Context) error {
	s.records.reopen()
	s.keyRecords.reopen()
	return s.scan(ctx)
}

// scan reads the id records not read yet, and schedules, due at once,
// every event file in the storage that the outbox does not hold yet.
func (s *storageStore) scan(ctx context.Context) error {
	s.lastScan = time.Now()
	if _, err := s.records.read(); err != nil {
		s.log.Warn("outbox: cannot read the event id records; retries of events accepted before may be delivered again", zap.Error(err))
	}
	until, err := s.keyRecords.read()
	s.mu.Lock()
	switch {
	case err == nil:
		// Once read, what another outbox on the storage writes later is
		// learnt at the next scan however that goes.
		s.unread = false
	case s.unread:
		s.unreadUntil = until
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("outbox: cannot read the remembered keys' records; until they are read or expire, whether a key was remembered cannot be told", zap.Error(err))
	}
	names, err := s.storage.List(ctx, s.prefix, true)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	known := make(map[string]bool, len(s.events))
	for _, e := range s.events {
		known[e.name] = true
	}
	s.mu.Unlock()
	now := time.Now()
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") || known[name] || s.unusable[name] {
			continue
		}
		// A file removed since it was listed is gone: it was delivered
		// (an outbox removes a file before forgetting it).
		data, err := s.storage.Load(ctx, name)
		if err != nil {
			continue // a directory, or delivered meanwhile
		}
		r := new(record)
		if err := json.Unmarshal(data, r); err != nil || r.ID == "" {
			s.unusable[name] = true
			s.log.Error("outbox: unreadable event file skipped", zap.String("file", name))
			continue
		}
		key := r.key()
		s.mu.Lock()
		if _, ok := s.events[key]; !ok {
			s.events[key] = &scheduled{kind: r.Kind, name: name, due: now}
		}
		// WeChat's retries of a queued event are duplicates.
		s.knownLocked(key, time.UnixMilli(r.First).Add(24*time.Hour), now)
		s.mu.Unlock()
	}
	return nil
}

// close writes the id records still queued, at once.
func (s *storageStore) close() {
	s.records.flush()
	s.keyRecords.flush()
}
