package outbox

import (
	"errors"
	"time"
)

// rememberer is a Store that keeps a caller's own records beside its
// event ids: the storage store, whose memory a restart empties. The Redis
// store keeps none; its caller keeps such records in Redis itself.
type rememberer interface {
	remember(key string, expiry time.Time)
	remembered(key string, now time.Time) (bool, error)
}

// ErrUnread: the records kept in the storage could not all be read since
// the outbox started (or at its last try, every rescanEvery); whether a
// key was remembered cannot be told until they are.
var ErrUnread = errors.New("outbox: the records in the storage could not be read")

// Remember keeps key until expiry where the store would otherwise lose it
// on a restart (Caddy's storage): Remembered reports it after a restart
// and on another instance sharing the storage. The record is written with
// the next batch of event id records, so a crash in the writeEvery before
// loses it; stopping the outbox writes it at once. It does nothing on the
// Redis store.
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
// (eventKey's "kind:id") in the store's records.
func rememberedKey(key string) string { return "remembered/" + key }

func (s *storageStore) remember(key string, expiry time.Time) {
	key = rememberedKey(key)
	s.mu.Lock()
	if c, ok := s.ids[key]; !ok || c.expiry.Before(expiry) {
		s.ids[key] = memClaim{expiry: expiry}
	}
	s.mu.Unlock()
	s.records.add(key, expiry)
}

func (s *storageStore) remembered(key string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.ids[rememberedKey(key)]; ok && now.Before(c.expiry) {
		return true, nil
	}
	if s.unread {
		return false, ErrUnread
	}
	return false, nil
}
