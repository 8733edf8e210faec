package outbox

import (
	"context"
	"errors"
	"strconv"
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

// TestSweepRemovesExpiredIDRecordsAndMergesTheRest: a record file is
// removed once all its records have expired; past mergeAbove files, the
// others become one file holding their unexpired records, which a
// restart reads.
func TestSweepRemovesExpiredIDRecordsAndMergesTheRest(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	ir := StorageStore(fs, "outbox", nil).(*storageStore).records
	now := time.Now()
	if _, err := ir.store(map[string]time.Time{"push:old": now.Add(-time.Second), "push:older": now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for i := range mergeAbove + 1 {
		batch := map[string]time.Time{"push:new" + strconv.Itoa(i): now.Add(time.Hour), "push:gone" + strconv.Itoa(i): now.Add(-time.Hour)}
		if _, err := ir.store(batch); err != nil {
			t.Fatal(err)
		}
	}
	ir.sweep(ctx, now)
	names, err := fs.List(ctx, ir.dir, false)
	if err != nil || len(names) != 1 {
		t.Fatalf("%d record files left (%v), want one, the merged", len(names), err)
	}
	next := StorageStore(fs, "outbox", nil).(*storageStore)
	if err := next.open(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range mergeAbove + 1 {
		if _, ok := next.ids["push:new"+strconv.Itoa(i)]; !ok {
			t.Errorf("the unexpired record push:new%d was not read", i)
		}
		if _, ok := next.ids["push:gone"+strconv.Itoa(i)]; ok {
			t.Errorf("the expired record push:gone%d was read", i)
		}
	}
}

// TestIDRecordsOfAnotherOutboxAreReadOnTheNextScan: an outbox reads the
// records another outbox on the storage wrote after it opened (one a
// reload replaced, still stopping, or another instance) on its next scan.
func TestIDRecordsOfAnotherOutboxAreReadOnTheNextScan(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	one := testStorageStore(t, fs, "outbox").(*storageStore)
	two := testStorageStore(t, fs, "outbox").(*storageStore)
	if err := one.open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := two.open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := two.done(ctx, "push:m1", time.Hour); err != nil {
		t.Fatal(err)
	}
	two.close()
	if err := one.scan(ctx); err != nil {
		t.Fatal(err)
	}
	if state, _, _ := one.claim(ctx, "push:m1", time.Second, time.Hour); state != claimDuplicate {
		t.Fatalf("claim of an id the other outbox took: %v, want a duplicate", state)
	}
}

// TestRecordAddedAfterCloseIsWrittenAtOnce: an event accepted after the
// outbox stopped (a request of the replaced config) has its record
// written before done returns, not by a writer nobody waits for.
func TestRecordAddedAfterCloseIsWrittenAtOnce(t *testing.T) {
	ctx := context.Background()
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	s := testStorageStore(t, fs, "outbox").(*storageStore)
	s.close()
	if err := s.done(ctx, "push:late", time.Hour); err != nil {
		t.Fatal(err)
	}
	if names, _ := fs.List(ctx, s.records.dir, false); len(names) != 1 {
		t.Fatalf("%d record files right after done, want 1", len(names))
	}
}
