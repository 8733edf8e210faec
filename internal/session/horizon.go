package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// horizonSlack is how far past a token's exp the recorded horizon is put
// when it has to move, so that it is written about once per horizonSlack
// and not at every login.
const horizonSlack = 10 * time.Minute

// Horizon is a time no token issued so far outlives: the latest exp
// issued, by this process or (through the store) by any instance sharing
// it, rounded up by horizonSlack. A logout revokes its session until the
// horizon, so no older, longer-lived token of that session comes back when
// token_ttl was lowered by a reload or is shorter on another instance.
//
// The horizon is recorded in the store before a token past it is handed
// out; issuing costs a store write only when the horizon moves.
type Horizon struct {
	recorded atomic.Int64 // Unix ms; tokens up to this exp need no write

	mu   sync.Mutex // serialises save
	save func(ctx context.Context, until time.Time) error
}

func NewHorizon(save func(ctx context.Context, until time.Time) error) *Horizon {
	return &Horizon{save: save}
}

// Covers reports whether a token expiring at exp is within the horizon.
func (t *Horizon) Covers(exp time.Time) bool {
	return exp.UnixMilli() <= t.recorded.Load()
}

// Extend records that a token expiring at exp is about to be issued. It
// returns an error, and the token must not be issued, when the new horizon
// cannot be recorded.
func (t *Horizon) Extend(ctx context.Context, exp time.Time) error {
	if t.Covers(exp) {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Covers(exp) {
		return nil
	}
	until := exp.Add(horizonSlack).Truncate(time.Second)
	if t.save != nil {
		if err := t.save(ctx, until); err != nil {
			return err
		}
	}
	t.Raise(until)
	return nil
}

// Raise moves the horizon to until unless it is already later: what
// another instance recorded, or what a restart found in storage.
func (t *Horizon) Raise(until time.Time) {
	ms := until.UnixMilli()
	for {
		cur := t.recorded.Load()
		if ms <= cur || t.recorded.CompareAndSwap(cur, ms) {
			return
		}
	}
}

// Latest returns the horizon as known here.
func (t *Horizon) Latest() time.Time { return time.UnixMilli(t.recorded.Load()) }
