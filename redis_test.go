package wechatauth

import (
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
)

// A key rotation on reload (signing_key NEW OLD, then NEW) keeps the Redis
// store: its L1, its subscription and the logouts it has still to write
// to Redis. A site with unrelated keys gets a store of its own.
func TestKeyRotationKeepsTheRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	site := func(keys ...string) *Handler {
		h := &Handler{Sandbox: true, Store: srv.URL, SigningKey: keys[0], PreviousSigningKeys: keys[1:]}
		if err := provision(t, h); err != nil {
			t.Fatalf("provision with %d keys: %v", len(keys), err)
		}
		return h
	}
	oldKey, newKey := "signing-key-A-for-redis-store-tests-0123456789", "signing-key-B-for-redis-store-tests-9876543210"
	before := site(oldKey)
	during := site(newKey, oldKey)
	if during.store != before.store {
		t.Fatal("signing_key NEW OLD made a new Redis store")
	}
	before.Cleanup()
	after := site(newKey)
	if after.store != during.store {
		t.Fatal("signing_key NEW, after NEW OLD, made a new Redis store")
	}
	other := site("an-unrelated-deployment-signing-key-0123456789")
	if other.store == after.store {
		t.Fatal("a site with unrelated signing keys shares the store")
	}
}
