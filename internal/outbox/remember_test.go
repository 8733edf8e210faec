package outbox

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// A key remembered before Caddy stops is still remembered by the outbox
// of the next start on the same storage, until it expires.
func TestRememberedKeyOutlivesARestart(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	before := start(t, New(testStorageStore(t, fs, "outbox"), testConfig(nil, nil)))
	before.Remember("sig:a", time.Now().Add(time.Hour))
	before.Remember("sig:gone", time.Now().Add(300*time.Millisecond))
	wantRemembered(t, before, "sig:a", true)
	wantRemembered(t, before, "sig:b", false)
	if err := before.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)

	after := start(t, New(testStorageStore(t, fs, "outbox"), testConfig(nil, nil)))
	wantRemembered(t, after, "sig:a", true)
	wantRemembered(t, after, "sig:gone", false)
}

// A remembered key and an event id never stand for each other, though the
// same records keep both.
func TestRememberedKeysAreNotEventIDs(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	up := newUpstream(t)
	o := start(t, New(testStorageStore(t, fs, "outbox"), testConfig(nil, nil)))
	ev := up.event("m1")
	o.Remember(eventKey(ev.Kind, ev.ID), time.Now().Add(time.Hour))
	accept(t, o, ev, Delivered)
	accept(t, o, up.event("m2"), Delivered)
	wantRemembered(t, o, eventKey(ev.Kind, "m2"), false)
}

// Until the remembered keys' records in the storage have been read,
// whether a key was remembered cannot be told: Remembered says so rather
// than "no". Once they have, a later failure to read does not undo that,
// and the event ids' records never count.
func TestRememberedCannotBeToldUntilTheRecordsAreRead(t *testing.T) {
	fs := &listFailingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}, failing: "_remembered"}
	fs.fail.Store(true)
	st := testStorageStore(t, fs, "outbox")
	// Not started: scan is called here, not by the polling loop.
	o := New(st, testConfig(nil, nil))
	if err := st.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Remembered("sig:a"); !errors.Is(err, ErrUnread) {
		t.Fatalf("Remembered with the records unread: %v, want ErrUnread", err)
	}
	fs.fail.Store(false)
	scan(t, st)
	wantRemembered(t, o, "sig:a", false)
	fs.fail.Store(true)
	scan(t, st)
	wantRemembered(t, o, "sig:a", false)

	ids := &listFailingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}, failing: "_ids"}
	ids.fail.Store(true)
	wantRemembered(t, start(t, New(testStorageStore(t, ids, "outbox"), testConfig(nil, nil))), "sig:a", false)
}

// A record file that cannot be read leaves the keys unknown only until
// the expiry its name gives, not until the scan after it: then every key
// in it has expired anyway.
func TestUnreadableRecordFileCountsUntilItsExpiry(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	dir := recordDir("outbox/push", "_remembered")
	expiry := time.Now().Add(500 * time.Millisecond)
	// A directory where a record file should be: listed, not loadable.
	bad := dir + "/" + strconv.FormatInt(expiry.UnixMilli(), 10) + "-x/y"
	if err := fs.Store(context.Background(), bad, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	st := testStorageStore(t, fs, "outbox/push")
	o := New(st, testConfig(nil, nil))
	if err := st.open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Remembered("sig:a"); !errors.Is(err, ErrUnread) {
		t.Fatalf("Remembered with a record file unreadable: %v, want ErrUnread", err)
	}
	// At its expiry, not at the next scan: a push refused until then must
	// not be refused again on WeChat's retry.
	time.Sleep(time.Until(expiry) + 10*time.Millisecond)
	wantRemembered(t, o, "sig:a", false)
}

// listFailingStorage cannot list the paths holding failing while fail is
// set.
type listFailingStorage struct {
	certmagic.Storage
	failing string
	fail    atomic.Bool
}

func (s *listFailingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if s.fail.Load() && strings.Contains(prefix, s.failing) {
		return nil, errors.New("disk error")
	}
	return s.Storage.List(ctx, prefix, recursive)
}

func scan(t *testing.T, st Store) {
	t.Helper()
	if err := st.(*storageStore).scan(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func wantRemembered(t *testing.T, o *Outbox, key string, want bool) {
	t.Helper()
	got, err := o.Remembered(key)
	if err != nil || got != want {
		t.Fatalf("Remembered(%q) = %v, %v; want %v", key, got, err, want)
	}
}
