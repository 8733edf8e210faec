package outbox

import (
	"errors"
	"time"
)

// rememberer is a Store that keeps a caller's own records beside its
// event ids, in files of their own: the storage store, whose memory a
// restart empties. The Redis store keeps none; its caller keeps such
// records in Redis itself.
type rememberer interface {
	remember(key string, expiry time.Time)
	remembered(key string, now time.Time) (bool, error)
}

// ErrUnread: the remembered keys written to the storage before the store
// was made have not all been read yet (tried at start and every
// rescanEvery; a file that cannot be read stops counting at the expiry in
// its name, the latest of its keys'): whether a key was remembered cannot
// be told until then.
var ErrUnread = errors.New("outbox: the remembered keys in the storage are not read yet")

// Remember keeps key until expiry where the store would otherwise lose it
// on a restart (Caddy's storage): Remembered reports it after a restart
// and on another instance sharing the storage (from its next scan). The
// records are written in batches, at most every writeEvery, so a crash
// in the writeEvery after loses it; stopping the outbox writes it at once.
// It does nothing on the Redis store.
func (o *Outbox) Remember(key string, expiry time.Time) {
	if r, ok := o.store.(rememberer); ok {
		r.remember(key, expiry)
	}
}

// Remembered reports whether key was given to Remember, here or by an
// outbox on the same storage before (read at start, and every rescanEvery
// after), and has not expired; ErrUnread when that cannot be told.
func (o *Outbox) Remembered(key string) (bool, error) {
	if r, ok := o.store.(rememberer); ok {
		return r.remembered(key, time.Now())
	}
	return false, nil
}

// rememberedKey keeps a caller's keys apart from the event ids
// (eventKey's "kind:id") in the store's memory.
func rememberedKey(key string) string { return "remembered/" + key }

func (s *storageStore) remember(key string, expiry time.Time) {
	key = rememberedKey(key)
	s.mu.Lock()
	if c, ok := s.ids[key]; !ok || c.expiry.Before(expiry) {
		s.ids[key] = memClaim{expiry: expiry}
	}
	s.mu.Unlock()
	s.keyRecords.add(key, expiry)
}

func (s *storageStore) remembered(key string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.ids[rememberedKey(key)]; ok && now.Before(c.expiry) {
		return true, nil
	}
	if s.unread && (s.unreadUntil.IsZero() || now.Before(s.unreadUntil)) {
		return false, ErrUnread
	}
	return false, nil
}
