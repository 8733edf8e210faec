package session

import (
	"sync"
	"time"
)

// Refused keeps, first in first out, the newest sessions the cache
// refused or evicted. At capacity ristretto admits a new session only if
// it has been used at least as often as the least used of the few it
// samples, and a session is stored before its first use: once every
// stored session has been read, nearly every new login would be refused,
// and those admitted evict one another, so a user could not decrypt
// minutes after logging in. Kept here, the newest logins stay, up to a
// bound, and the oldest go first.
type Refused struct {
	mu    sync.Mutex
	max   int
	seq   uint64
	queue []refusedSlot // oldest first; stale slots are skipped
	byID  map[string]refusedEntry
	shut  bool // the cache is being closed: its evictions are not kept
}

type refusedSlot struct {
	sid string
	seq uint64
}

type refusedEntry struct {
	s   *Session // its expires says until when it is kept
	seq uint64
}

// asideOf is how many of a memory store's maxSessions (> 0) are kept
// aside (Refused), the rest being ristretto's: a tenth, as the small
// recency window in front of an LFU cache that W-TinyLFU (Caffeine) has.
func asideOf(maxSessions int) int { return maxSessions / 10 }

func NewRefused(max int) *Refused {
	return &Refused{max: max, byID: make(map[string]refusedEntry)}
}

// Put keeps s until s.expires, pushing out the oldest kept when full;
// nothing once shut down.
func (r *Refused) Put(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shut {
		return
	}
	r.seq++
	r.byID[s.SID] = refusedEntry{s: s, seq: r.seq}
	r.queue = append(r.queue, refusedSlot{s.SID, r.seq})
	r.trim()
}

// trim pushes out the oldest sessions past max and drops stale slots.
func (r *Refused) trim() {
	for len(r.byID) > r.max && len(r.queue) > 0 {
		slot := r.queue[0]
		r.queue = r.queue[1:]
		if e, ok := r.byID[slot.sid]; ok && e.seq == slot.seq {
			delete(r.byID, slot.sid)
		}
	}
	if len(r.queue) > 2*len(r.byID)+64 {
		live := make([]refusedSlot, 0, len(r.byID))
		for _, slot := range r.queue {
			if e, ok := r.byID[slot.sid]; ok && e.seq == slot.seq {
				live = append(live, slot)
			}
		}
		r.queue = live
	}
}

// setAside keeps a session the cache evicted, for the time it had left.
func (r *Refused) setAside(s *Session) {
	if time.Until(s.expires) > 0 {
		r.Put(s)
	}
}

// shutDown stops Put: a cache being closed evicts everything.
func (r *Refused) shutDown() {
	r.mu.Lock()
	r.shut = true
	r.byID = make(map[string]refusedEntry)
	r.queue = nil
	r.mu.Unlock()
}

// Get returns the kept session and the time it has left.
func (r *Refused) Get(sid string, now time.Time) (*Session, time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byID[sid]
	if !ok {
		return nil, 0, false
	}
	left := e.s.expires.Sub(now)
	if left <= 0 {
		delete(r.byID, sid)
		return nil, 0, false
	}
	return e.s, left, true
}

func (r *Refused) Delete(sid string) {
	r.mu.Lock()
	delete(r.byID, sid)
	r.mu.Unlock()
}

// deleteOlder drops sid's session unless it is s: put stores s in the
// cache, and the cache may already have evicted s into here.
func (r *Refused) deleteOlder(sid string, s *Session) {
	r.mu.Lock()
	if e, ok := r.byID[sid]; ok && e.s != s {
		delete(r.byID, sid)
	}
	r.mu.Unlock()
}

// Resize sets how many sessions are kept.
func (r *Refused) Resize(max int) {
	r.mu.Lock()
	r.max = max
	r.trim()
	r.mu.Unlock()
}
