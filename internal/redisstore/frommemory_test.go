package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
)

// TestMovingFromTheMemoryStoreKeepsLogoutsAndBans: a deployment that ran
// with the memory store, then starts on Redis, keeps what the memory
// store kept in Caddy's storage: a token logged out before the move stays
// refused, a banned user stays banned, on every instance. A ban lifted in
// Redis after the move is not brought back by a later start, even once
// Redis has forgotten the lift; a ban made with the memory store after
// the first move is carried by the next.
func TestMovingFromTheMemoryStoreKeepsLogoutsAndBans(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	mem, err := session.NewMemory(100, storage)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := mem.Revoke(ctx, "sid-logged-out", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := mem.ExtendHorizon(ctx, now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ban := func(openid string, at time.Time) *session.UserRecord {
		return &session.UserRecord{AppID: "wxapp", OpenID: openid, RevokedBefore: session.CutOff(at), Keep: at.Add(time.Hour), Changed: at, Ban: &session.Ban{Since: at}}
	}
	if err := mem.SaveUser(ctx, ban("oBannedInMemory", now)); err != nil {
		t.Fatal(err)
	}
	mem.Destruct()

	a := rdsStore(t, srv, rdsKeyA)
	if err := a.CarryMemoryStore(ctx, storage); err != nil {
		t.Fatal(err)
	}
	b := rdsStore(t, srv, rdsKeyA) // another instance, without that storage
	if !b.Revoked("sid-logged-out", time.Now()) {
		t.Error("a session logged out with the memory store is live again on Redis")
	}
	if b.Users().Banned("wxapp", "oBannedInMemory", time.Now()) == nil {
		t.Error("a user banned with the memory store is not banned on Redis")
	}
	if h, err := b.Horizon(ctx); err != nil || h.Before(now.Add(3*time.Hour)) {
		t.Errorf("token horizon %v (%v), want the memory store's, %v", h, err, now.Add(3*time.Hour))
	}

	// The ban is lifted in Redis, and Redis later forgets the lift.
	lift := b.Users().Record("wxapp", "oBannedInMemory")
	lift.Ban, lift.Changed, lift.BanChanged, lift.Decided = nil, time.Now(), time.Now(), true
	if err := b.SaveUser(ctx, &lift); err != nil {
		t.Fatal(err)
	}
	if err := b.client.HDel(ctx, b.usersKey, identity.UserKey("wxapp", "oBannedInMemory")).Err(); err != nil {
		t.Fatal(err)
	}
	// A ban made with the memory store after the move.
	mem2, err := session.NewMemory(100, storage)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := mem2.SaveUser(ctx, ban("oBannedLater", later)); err != nil {
		t.Fatal(err)
	}
	mem2.Destruct()

	c := rdsStore(t, srv, rdsKeyA)
	if err := c.CarryMemoryStore(ctx, storage); err != nil {
		t.Fatal(err)
	}
	d := rdsStore(t, srv, rdsKeyA)
	if d.Users().Banned("wxapp", "oBannedInMemory", time.Now()) != nil {
		t.Error("a ban lifted in Redis came back from the memory store's storage")
	}
	if d.Users().Banned("wxapp", "oBannedLater", later) == nil {
		t.Error("a ban made with the memory store after the first move was not carried")
	}
}
