package weblogin

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// ErrExists is returned by PutOnce for a key that is already stored.
var ErrExists = errors.New("weblogin: key already stored")

// OnceStore keeps the values of states and handoff tickets: each is put
// once and taken at most once, so a replayed callback or link finds
// nothing. A store shared by every instance (Redis) lets any instance
// finish a login another began.
type OnceStore interface {
	// PutOnce stores value under key for ttl; ErrExists if key is live.
	PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns the value under key and deletes it, atomically: of
	// two concurrent Takes of one key, one gets ok.
	Take(ctx context.Context, key string) (value []byte, ok bool, err error)
}

// MemoryStore is an OnceStore in one process's memory, for tests and single
// instances. The zero value is not usable: call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time
	max int

	mu      sync.Mutex
	entries map[string]memEntry
	// order holds the keys in the order they were put, oldest first, to
	// find the value a full store drops. A key taken or put again stays
	// until it reaches the front or the list is compacted; its seq tells
	// a stale place from the live one.
	order []keySeq
	seq   uint64
	// pruned is when a full store last looked for expired values: at
	// most once a second, so that a flood does not walk them all for
	// every put.
	pruned time.Time
}

type memEntry struct {
	value   []byte
	expires time.Time
	seq     uint64
}

type keySeq struct {
	key string
	seq uint64
}

// NewMemoryStore returns an empty store holding at most max keys (no
// bound when max <= 0); now is time.Now when nil. A full store drops its
// expired values, else its oldest, for a new one: beginning logins needs
// no credential, and a flood of them must not refuse the next real one
// until theirs expire.
func NewMemoryStore(max int, now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, max: max, entries: make(map[string]memEntry)}
}

// PutOnce implements OnceStore.
func (m *MemoryStore) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return errors.New("weblogin: ttl must be positive")
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok && now.Before(e.expires) {
		return ErrExists
	}
	if m.max > 0 {
		if len(m.entries) >= m.max && now.Sub(m.pruned) >= time.Second {
			m.pruneLocked(now)
			m.pruned = now
		}
		for len(m.entries) >= m.max && len(m.order) > 0 {
			first := m.order[0]
			m.order = m.order[1:]
			if e, ok := m.entries[first.key]; ok && e.seq == first.seq {
				delete(m.entries, first.key)
			}
		}
		if len(m.order) > 2*m.max {
			m.compactLocked()
		}
	}
	m.seq++
	m.entries[key] = memEntry{value: append([]byte(nil), value...), expires: now.Add(ttl), seq: m.seq}
	if m.max > 0 {
		m.order = append(m.order, keySeq{key, m.seq})
	}
	return nil
}

// Take implements OnceStore.
func (m *MemoryStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return nil, false, nil
	}
	delete(m.entries, key)
	if !now.Before(e.expires) {
		return nil, false, nil
	}
	return e.value, true, nil
}

// Len returns how many keys are held, live or expired but not yet pruned.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (m *MemoryStore) pruneLocked(now time.Time) {
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
}

// compactLocked drops the places of keys no longer held from order.
func (m *MemoryStore) compactLocked() {
	kept := make([]keySeq, 0, len(m.entries))
	for _, o := range m.order {
		if e, ok := m.entries[o.key]; ok && e.seq == o.seq {
			kept = append(kept, o)
		}
	}
	m.order = kept
}

var _ OnceStore = (*MemoryStore)(nil)

// KindedStore is an OnceStore of one MemoryStore per kind of key, the part
// before its first ':' ("web_state" of "web_state:…"). Each kind is
// bounded on its own, so that a flood of one kind (logins begun, which
// need no credential) cannot push out the values of another (handoff
// tickets, which need a login). Keys of the kinds not named share one
// more store.
type KindedStore struct {
	kinds map[string]*MemoryStore
	other *MemoryStore
}

// NewKindedStore returns an empty store holding at most max keys of each
// of kinds, and max more of all others (see NewMemoryStore).
func NewKindedStore(max int, now func() time.Time, kinds ...string) *KindedStore {
	k := &KindedStore{kinds: make(map[string]*MemoryStore, len(kinds)), other: NewMemoryStore(max, now)}
	for _, kind := range kinds {
		k.kinds[kind] = NewMemoryStore(max, now)
	}
	return k
}

func (k *KindedStore) store(key string) *MemoryStore {
	if kind, _, ok := strings.Cut(key, ":"); ok {
		if m := k.kinds[kind]; m != nil {
			return m
		}
	}
	return k.other
}

// PutOnce implements OnceStore.
func (k *KindedStore) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return k.store(key).PutOnce(ctx, key, value, ttl)
}

// Take implements OnceStore.
func (k *KindedStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	return k.store(key).Take(ctx, key)
}

var _ OnceStore = (*KindedStore)(nil)
