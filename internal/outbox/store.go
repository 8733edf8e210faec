package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Store keeps the deduplication records and the outbox: RedisStore or
// StorageStore.
type Store interface {
	// claim records key as in flight for lease (remembered for keep), or
	// says it is a duplicate or busy; an expired in-flight claim is taken
	// over. token identifies this claim for release.
	claim(ctx context.Context, key string, lease, keep time.Duration) (claimState, string, error)
	// done marks key delivered.
	done(ctx context.Context, key string, keep time.Duration) error
	// release forgets key if token still holds it.
	release(ctx context.Context, key, token string) error
	// enqueue writes r to the outbox, due after delay, and marks key done.
	enqueue(ctx context.Context, key string, r *record, delay, keep time.Duration) error
	// due claims up to n due events for lease.
	due(ctx context.Context, n int, lease time.Duration) ([]*claimed, error)
	// retry makes a claimed event due again after delay, with its
	// record's new attempt count, if the claim still holds.
	retry(ctx context.Context, c *claimed, delay time.Duration) error
	// remove takes a claimed event out of the outbox.
	remove(ctx context.Context, c *claimed) error
	// pending counts the events in the outbox by kind.
	pending(ctx context.Context) (map[string]int, error)
	// open prepares the store when the workers start; close when they
	// stopped, or when the wait for them timed out (the store is still
	// used by the deliveries in flight then).
	open(ctx context.Context) error
	close()
}

type claimState int

const (
	claimNew claimState = iota
	claimDuplicate
	claimBusy
)

// claimed is an outbox event a worker holds.
type claimed struct {
	key  string
	rec  *record
	hold string // the store's proof of the claim
}

func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
