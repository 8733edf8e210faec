package outbox

import (
	"context"
	"errors"
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
	wantRemembered(t, o, eventKey(ev.Kind, "m2"), false)
	accept(t, o, up.event("m2"), Delivered)
	wantRemembered(t, o, eventKey(ev.Kind, "m2"), false)
}

// Until the records in the storage have been read, whether a key was
// remembered cannot be told: Remembered says so rather than "no".
func TestRememberedCannotBeToldUntilTheRecordsAreRead(t *testing.T) {
	fs := &listFailingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	fs.fail.Store(true)
	st := testStorageStore(t, fs, "outbox")
	o := start(t, New(st, testConfig(nil, nil)))
	if _, err := o.Remembered("sig:a"); !errors.Is(err, ErrUnread) {
		t.Fatalf("Remembered with the records unread: %v, want ErrUnread", err)
	}
	fs.fail.Store(false)
	if err := st.(*storageStore).scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantRemembered(t, o, "sig:a", false)
}

// listFailingStorage cannot list the id records while fail is set.
type listFailingStorage struct {
	certmagic.Storage
	fail atomic.Bool
}

func (s *listFailingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if s.fail.Load() && strings.Contains(prefix, "_ids") {
		return nil, errors.New("disk error")
	}
	return s.Storage.List(ctx, prefix, recursive)
}

func wantRemembered(t *testing.T, o *Outbox, key string, want bool) {
	t.Helper()
	got, err := o.Remembered(key)
	if err != nil || got != want {
		t.Fatalf("Remembered(%q) = %v, %v; want %v", key, got, err, want)
	}
}
