package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// Caddy restarts with an event in the outbox: the new instance, on the
// same storage, delivers it.
func TestStorageOutboxSurvivesARestart(t *testing.T) {
	b := storageBackend(t)
	up := newUpstream(t)
	up.down.Store(true)
	before := start(t, New(b.store(t), testConfig(nil, nil)))
	accept(t, before, up.event("m1"), Queued)
	if err := before.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	up.down.Store(false)
	after := start(t, New(b.store(t), testConfig(nil, nil)))
	up.waitCount(t, "m1", 1, 2*time.Second)
	// The outbox's own files, and the id records beside them, say which
	// were queued.
	accept(t, after, up.event("m1"), Duplicate)
	if b.keys(t) != 0 {
		t.Error("the delivered event's file is still there")
	}
}

// Two instances sharing the storage never deliver one event at once: the
// storage lock keeps the second off while the first holds it.
func TestStorageLockKeepsASecondInstanceOff(t *testing.T) {
	dir := t.TempDir()
	fs := &certmagic.FileStorage{Path: dir}
	up := newUpstream(t)
	up.down.Store(true)
	cfg := testConfig(nil, nil)
	cfg.Backoff = func(int) time.Duration { return 0 }
	one := testStorageStore(t, fs, "outbox")
	accept(t, New(one, cfg), up.event("m1"), Queued)
	held, err := one.due(context.Background(), 10, cfg.Lease)
	if err != nil || len(held) != 1 {
		t.Fatalf("claimed %d (%v)", len(held), err)
	}
	two := testStorageStore(t, fs, "outbox")
	if err := two.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := two.due(context.Background(), 10, cfg.Lease); len(got) != 0 {
		t.Fatal("a second instance claimed an event the first holds")
	}
	if err := one.remove(context.Background(), held[0]); err != nil {
		t.Fatal(err)
	}
}

// An event queued under its Key is still known by that Key after a
// restart; a record without Key (written before Key existed) by kind:id.
func TestStorageOutboxRestartKeepsTheDedupKey(t *testing.T) {
	b := storageBackend(t)
	up := newUpstream(t)
	up.down.Store(true)
	before := start(t, New(b.store(t), testConfig(nil, nil)))
	keyed := up.event("k1")
	keyed.Key = "wxapp:msg:k1"
	accept(t, before, keyed, Queued)
	accept(t, before, up.event("old1"), Queued) // no Key: stored as before
	if err := before.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	up.down.Store(false)
	after := start(t, New(b.store(t), testConfig(nil, nil)))
	up.waitCount(t, "k1", 1, 2*time.Second)
	up.waitCount(t, "old1", 1, 2*time.Second)
	accept(t, after, keyed, Duplicate)
	accept(t, after, up.event("old1"), Duplicate)
}

// undeletableStorage cannot delete (a read-only or failing disk).
type undeletableStorage struct{ certmagic.Storage }

func (undeletableStorage) Delete(context.Context, string) error {
	return errors.New("read-only file system")
}

// An event delivered whose file cannot be removed is due again once its
// claim lapses, as in Redis: not on every poll, which would post it to the
// upstream many times a second for as long as the disk refuses.
func TestStorageEventNotRemovedIsRetriedAfterItsLeaseNotEveryPoll(t *testing.T) {
	up := newUpstream(t)
	up.down.Store(true)
	cfg := testConfig(nil, nil) // polls every 20 ms; lease 1.5 s
	o := start(t, New(testStorageStore(t, undeletableStorage{&certmagic.FileStorage{Path: t.TempDir()}}, "outbox"), cfg))
	accept(t, o, up.event("m1"), Queued)
	up.down.Store(false)
	up.waitCount(t, "m1", 1, 2*time.Second)
	time.Sleep(time.Second) // within the lease of the first delivery
	if n := up.count("m1"); n != 1 {
		t.Fatalf("delivered %d times within a second of the first delivery, want once until the lease ends", n)
	}
}

// An outbox that a config reload replaced queues the event whose first
// delivery was under way, after its successor on the same storage read
// it: the successor delivers it without waiting for a restart.
func TestStorageOutboxFindsEventsQueuedAfterItStarted(t *testing.T) {
	b := storageBackend(t)
	up := newUpstream(t)
	up.down.Store(true)
	old := New(b.store(t), testConfig(nil, nil)) // not started: stopped by the reload
	successor := start(t, New(b.store(t), testConfig(nil, nil)))
	accept(t, old, up.event("m1"), Queued)
	up.down.Store(false)
	up.waitCount(t, "m1", 1, 15*time.Second) // rescanEvery and then some
	deadline := time.Now().Add(2 * time.Second)
	for b.keys(t) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the delivered event's file is still there")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The successor knows the event now: WeChat's retry is a duplicate.
	accept(t, successor, up.event("m1"), Duplicate)
}

// TestSweepRemovesOnlyExpiredIDRecords: a file of id records is removed
// once all its records have expired, and read until then.
func TestSweepRemovesOnlyExpiredIDRecords(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	s := StorageStore(fs, "outbox", nil).(*storageStore)
	now := time.Now()
	if err := s.storeBatch(map[string]time.Time{"push:old": now.Add(-time.Second), "push:older": now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.storeBatch(map[string]time.Time{"push:new": now.Add(time.Hour), "push:gone": now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.sweep(ctx, now)
	names, err := fs.List(ctx, s.doneDir(), false)
	if err != nil || len(names) != 1 {
		t.Fatalf("%d record files left (%v), want the one with an unexpired record", len(names), err)
	}
	next := StorageStore(fs, "outbox", nil).(*storageStore)
	if err := next.open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := next.ids["push:new"]; !ok {
		t.Error("the unexpired record was not read")
	}
	if _, ok := next.ids["push:gone"]; ok {
		t.Error("an expired record was read")
	}
}
