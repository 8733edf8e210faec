package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// A key remembered before Caddy stops is still remembered by the outbox
// of the next start on the same storage, until it expires; it is never
// taken for an event id, nor an event id for it.
func TestRememberedKeyOutlivesARestart(t *testing.T) {
	fs := &certmagic.FileStorage{Path: t.TempDir()}
	up := newUpstream(t)
	before := start(t, New(testStorageStore(t, fs, "outbox"), testConfig(nil, nil)))
	before.Remember("sig:a", time.Now().Add(time.Hour))
	before.Remember("sig:gone", time.Now().Add(300*time.Millisecond))
	if !before.Remembered("sig:a") || before.Remembered("sig:b") {
		t.Fatal("Remembered does not report what this outbox remembered")
	}
	if err := before.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)

	after := start(t, New(testStorageStore(t, fs, "outbox"), testConfig(nil, nil)))
	if !after.Remembered("sig:a") {
		t.Error("a key remembered before the restart is forgotten after it")
	}
	if after.Remembered("sig:gone") {
		t.Error("an expired key is still remembered")
	}
	ev := up.event("m1")
	ev.ID = "sig:a"
	accept(t, after, ev, Delivered)
}
