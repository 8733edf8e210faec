package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"go.uber.org/zap"
)

// TestLiftMissedByAnInstanceReachesItWhenItSyncs: an instance that missed
// a ban's lift (its subscription was down) still holds the ban. The lift
// no longer matters by itself (the ban's cut-off is long past), but it
// stays in Redis, so the instance's next sync ends the ban, also after
// another instance synced first.
func TestLiftMissedByAnInstanceReachesItWhenItSyncs(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	ban := oldBan("oLifted")
	b.Users().Merge(ban)
	// The lift, written while b did not hear its message.
	lift := *ban
	lift.Ban, lift.Changed = nil, time.Now()
	putUser(t, a, &lift)
	if err := a.syncUsers(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.syncUsers(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if b.Users().Banned(ban.AppID, ban.OpenID, time.Now()) != nil {
		t.Fatal("the instance that missed the lift still bans the user after it synced")
	}
}

// TestUserRecordsMadeDuringAnOutageReachRedis: a ban, and the lift of an
// old ban, made while Redis does not answer hold on this instance at once
// and reach Redis and the other instances by themselves once it answers;
// the lift is not undone by a sync, though by itself it no longer matters.
func TestUserRecordsMadeDuringAnOutageReachRedis(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	lifted := oldBan("oLiftedInOutage")
	if err := a.SaveUser(ctx, lifted); err != nil {
		t.Fatal(err)
	}
	waitUser(t, b, lifted.OpenID, true)

	srv.Stop() // nothing sent reaches Redis: it restarts empty
	now := time.Now()
	banned := &session.UserRecord{AppID: "wxapp", OpenID: "oBannedInOutage", Keep: now.Add(time.Hour), Changed: now, Ban: &session.Ban{Since: now}}
	lift := *lifted
	lift.Ban, lift.Changed = nil, now
	for _, rec := range []*session.UserRecord{banned, &lift} {
		err := a.SaveUser(ctx, rec)
		if !errors.Is(err, session.ErrStoreDown) || !errors.Is(err, session.ErrQueued) {
			t.Fatalf("SaveUser with Redis down: %v, want ErrStoreDown and ErrQueued", err)
		}
	}
	if a.Users().Banned("wxapp", banned.OpenID, time.Now()) == nil || a.Users().Banned("wxapp", lifted.OpenID, time.Now()) != nil {
		t.Fatal("the records made during the outage do not hold on their instance")
	}
	srv.Start()

	waitUser(t, b, banned.OpenID, true)
	waitUser(t, b, lifted.OpenID, false)
	for _, s := range []*Store{a, b, rdsStore(t, srv, rdsKeyA)} {
		if err := s.syncUsers(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		if s.Users().Banned("wxapp", banned.OpenID, time.Now()) == nil || s.Users().Banned("wxapp", lifted.OpenID, time.Now()) != nil {
			t.Fatal("after a sync an instance does not hold the records made during the outage")
		}
	}
}

// TestQueuedUserRecordNeverOverwritesANewerOne: a record queued during an
// outage is merged with what Redis holds when it is written: a newer
// record another instance wrote meanwhile wins.
func TestQueuedUserRecordNeverOverwritesANewerOne(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	t1 := time.Now().Add(-time.Minute)
	queued := &session.UserRecord{AppID: "wxapp", OpenID: "oRaced", Keep: t1.Add(time.Hour), Changed: t1, Ban: &session.Ban{Since: t1}}
	a.users.Merge(queued)
	a.queueUser(queued)
	newer := *queued
	newer.Ban, newer.Changed, newer.RevokedBefore = nil, time.Now(), t1
	putUser(t, a, &newer)
	field := identity.UserKey(newer.AppID, newer.OpenID)
	a.retryUsers(ctx)
	raw, err := a.client.HGet(ctx, a.usersKey, field).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got session.UserRecord
	if err := json.Unmarshal([]byte(raw), &got); err != nil || got.Ban != nil || !got.RevokedBefore.Equal(t1) {
		t.Fatalf("Redis holds %s, want the newer record (no ban, its cut-off)", raw)
	}
	if a.Users().Banned("wxapp", "oRaced", time.Now()) != nil {
		t.Fatal("the instance that queued the older record still bans the user")
	}
	a.mu.Lock()
	left := len(a.userPending)
	a.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d records still queued", left)
	}
}

// waitUser waits up to 5 s for s to ban openid of wxapp, or not.
func waitUser(t *testing.T, s *Store, openid string, banned bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for (s.Users().Banned("wxapp", openid, time.Now()) != nil) != banned {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, %s banned: %v, want %v", openid, !banned, banned)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopless is a Store on srv with none of its background loops: what it
// queues stays queued until the test calls retryUsers.
func loopless(t *testing.T, srv *rdsServer) *Store {
	client := srv.Client()
	t.Cleanup(func() { client.Close() })
	return &Store{client: client, usersKey: "wechat_auth:test:users", channel: "wechat_auth:test:revoked",
		users: session.NewUsers(), userPending: make(map[string]pendingUser), log: zap.NewNop()}
}

// TestQueuedRevokeKeepsABanItNeverSaw: a revocation queued on an
// instance that did not hear of a ban decided before it (its subscription
// was down) does not lift that ban when it is written.
func TestQueuedRevokeKeepsABanItNeverSaw(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	ban := &session.UserRecord{AppID: "wxapp", OpenID: "oBannedElsewhere", RevokedBefore: t0, Keep: t0.Add(time.Hour), Changed: t0, BanChanged: t0, Ban: &session.Ban{Since: t0}}
	putUser(t, s, ban)
	now := time.Now()
	revoke := &session.UserRecord{AppID: "wxapp", OpenID: ban.OpenID, RevokedBefore: session.CutOff(now), Keep: now.Add(time.Hour), Changed: now}
	cur := s.users.Record(revoke.AppID, revoke.OpenID)
	revoke.KeepBan(&cur)
	s.queueUser(s.users.Merge(revoke))
	s.retryUsers(ctx)
	raw, _ := s.client.HGet(ctx, s.usersKey, identity.UserKey(ban.AppID, ban.OpenID)).Result()
	var got session.UserRecord
	if json.Unmarshal([]byte(raw), &got) != nil || got.Ban == nil || !got.RevokedBefore.Equal(revoke.RevokedBefore) {
		t.Fatalf("Redis holds %s; want the ban kept, with the revocation's cut-off", raw)
	}
	if s.Users().Banned("wxapp", ban.OpenID, time.Now()) == nil {
		t.Fatal("the instance that queued the revocation does not hold the ban once it is written")
	}
}

// TestSetUserIfWritesOnlyOverWhatWasRead: the write of a queued record
// never replaces a record another instance wrote after it was read.
func TestSetUserIfWritesOnlyOverWhatWasRead(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	if err := s.client.HSet(ctx, s.usersKey, "f", "newer").Err(); err != nil {
		t.Fatal(err)
	}
	for _, read := range []string{"", "older"} {
		if set, err := setUserIf.Run(ctx, s.client, []string{s.usersKey}, "f", read, "ours").Int(); err != nil || set != 0 {
			t.Fatalf("read %q: set %d (%v), want 0", read, set, err)
		}
	}
	if v, _ := s.client.HGet(ctx, s.usersKey, "f").Result(); v != "newer" {
		t.Fatalf("Redis holds %q, want the newer record", v)
	}
	if set, _ := setUserIf.Run(ctx, s.client, []string{s.usersKey}, "f", "newer", "ours").Int(); set != 1 {
		t.Fatal("not written over the record that was read")
	}
}

// TestUnqueueKeepsARecordQueuedSince: a write that succeeds unqueues
// only what it wrote, not a record of the same user queued meanwhile.
func TestUnqueueKeepsARecordQueuedSince(t *testing.T) {
	s := &Store{userPending: make(map[string]pendingUser)}
	rec := &session.UserRecord{AppID: "wxapp", OpenID: "oTwice", Changed: time.Now()}
	key := identity.UserKey(rec.AppID, rec.OpenID)
	s.queueUser(rec)
	written := s.userPending[key].gen
	s.queueUser(rec)
	s.unqueueUser(key, written)
	if _, ok := s.userPending[key]; !ok {
		t.Fatal("the record queued after the one written was unqueued")
	}
}

// TestSaveUserMergesWithWhatRedisHolds: with Redis up too, an operator's
// change made on an instance that had not heard of the user's record in
// Redis is merged with it, not written over it: a revocation keeps the
// ban, a lift keeps the ban's cut-off.
func TestSaveUserMergesWithWhatRedisHolds(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	field := identity.UserKey("wxapp", "oMissed")
	stored := func() session.UserRecord {
		t.Helper()
		raw, err := s.client.HGet(ctx, s.usersKey, field).Result()
		var rec session.UserRecord
		if err != nil || json.Unmarshal([]byte(raw), &rec) != nil {
			t.Fatalf("the users hash holds %q (%v)", raw, err)
		}
		return rec
	}
	ban := &session.UserRecord{AppID: "wxapp", OpenID: "oMissed", RevokedBefore: t0, Keep: t0.Add(time.Hour), Changed: t0, BanChanged: t0, Ban: &session.Ban{Since: t0}}
	putUser(t, s, ban)

	now := time.Now()
	revoke := &session.UserRecord{AppID: "wxapp", OpenID: "oMissed", RevokedBefore: session.CutOff(now), Keep: now.Add(time.Hour), Changed: now}
	revoke.KeepBan(&session.UserRecord{})
	if err := s.SaveUser(ctx, revoke); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got.Ban == nil || !got.RevokedBefore.Equal(revoke.RevokedBefore) {
		t.Fatalf("after a revocation on an instance that missed the ban, Redis holds ban %v, cut-off %v", got.Ban, got.RevokedBefore)
	}

	s.users = session.NewUsers() // another instance, which heard of nothing
	lift := &session.UserRecord{AppID: "wxapp", OpenID: "oMissed", Changed: time.Now(), BanChanged: time.Now()}
	if err := s.SaveUser(ctx, lift); err != nil {
		t.Fatal(err)
	}
	if got := stored(); got.Ban != nil || !got.RevokedBefore.Equal(revoke.RevokedBefore) {
		t.Fatalf("after a lift on an instance that knew no record, Redis holds ban %v, cut-off %v; want no ban, the cut-off kept", got.Ban, got.RevokedBefore)
	}
}

// oldBan is a ban of wxapp's openid decided two days ago, whose cut-off no
// longer matters.
func oldBan(openid string) *session.UserRecord {
	old := time.Now().Add(-48 * time.Hour)
	return &session.UserRecord{AppID: "wxapp", OpenID: openid, RevokedBefore: old, Keep: old.Add(time.Hour), Changed: old, Ban: &session.Ban{Since: old}}
}

// putUser writes rec into s's users hash directly, as another instance
// would have.
func putUser(t *testing.T, s *Store, rec *session.UserRecord) {
	t.Helper()
	v, _ := json.Marshal(rec)
	if err := s.client.HSet(context.Background(), s.usersKey, identity.UserKey(rec.AppID, rec.OpenID), v).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestUserRecordsReturnToARedisRestartedEmpty: a ban and a revocation
// Redis took, then lost when it restarted without persistence, are written
// back by the instances that hold them, so an instance started afterwards
// enforces them too, as it does the logouts.
func TestUserRecordsReturnToARedisRestartedEmpty(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	now := time.Now()
	banned := &session.UserRecord{AppID: "wxapp", OpenID: "oBannedBefore", RevokedBefore: session.CutOff(now), Keep: now.Add(time.Hour), Changed: now, BanChanged: now, Ban: &session.Ban{Since: now}}
	revoked := &session.UserRecord{AppID: "wxapp", OpenID: "oRevokedBefore", RevokedBefore: session.CutOff(now), Keep: now.Add(time.Hour), Changed: now}
	for _, rec := range []*session.UserRecord{banned, revoked} {
		if err := a.SaveUser(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	waitUser(t, b, banned.OpenID, true)

	srv.Stop()
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := a.client.HLen(ctx, a.usersKey).Result(); n < 2; n, _ = a.client.HLen(ctx, a.usersKey).Result() {
		if time.Now().After(deadline) {
			t.Fatalf("10 s after Redis restarted empty, it holds %d of the 2 user records", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := rdsStore(t, srv, rdsKeyA)
	if c.Users().Banned("wxapp", banned.OpenID, time.Now()) == nil {
		t.Error("an instance started after the restart does not enforce the ban")
	}
	if got := c.Users().Record("wxapp", revoked.OpenID); !got.RevokedBefore.Equal(revoked.RevokedBefore) {
		t.Errorf("an instance started after the restart has cut-off %v, want %v", got.RevokedBefore, revoked.RevokedBefore)
	}
}

// TestSyncKeepsALiftThatNoLongerMatters: a lift of an old ban no longer
// matters by itself, but syncs keep it while its tombstone lasts, so the
// ban a late message or a stale copy in Redis brings is not in force
// again; the cut-off it carries is no longer checked.
func TestSyncKeepsALiftThatNoLongerMatters(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	ban := oldBan("oLiftKept")
	putUser(t, s, ban)
	lift := *ban
	lift.Ban, lift.Changed, lift.BanChanged = nil, time.Now(), time.Now()
	s.users.Merge(&lift)
	for i := range 2 {
		if err := s.syncUsers(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		s.users.Merge(oldBan("oLiftKept")) // the ban's message, delivered late
		if s.Users().Banned("wxapp", ban.OpenID, time.Now()) != nil {
			t.Fatalf("after sync %d the lifted ban is in force again", i+1)
		}
	}
	if s.Users().Refused(&identity.Identity{Issued: time.Now().Add(-72 * time.Hour), Key: identity.UserKey("wxapp", "oLiftKept")}) {
		t.Error("the cut-off of a record that no longer matters is still checked")
	}
}

// TestUserWriteRacedByAnotherInstanceKeepsBoth: another instance writes
// the user's record between this one's read and write; the write does not
// go over it, but is merged with it and made on the next try.
func TestUserWriteRacedByAnotherInstanceKeepsBoth(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	now := time.Now()
	theirs := &session.UserRecord{AppID: "wxapp", OpenID: "oRacedWrite", Changed: now, BanChanged: now, Ban: &session.Ban{Since: now}, Keep: now.Add(time.Hour)}
	raced := false
	betweenUserReadAndWrite = func() {
		if !raced {
			raced = true
			putUser(t, s, theirs)
		}
	}
	t.Cleanup(func() { betweenUserReadAndWrite = nil })
	ours := &session.UserRecord{AppID: "wxapp", OpenID: "oRacedWrite", RevokedBefore: session.CutOff(now), Keep: now.Add(time.Hour), Changed: now.Add(-time.Second)}
	ours.KeepBan(&session.UserRecord{}) // this instance knew of no ban
	if err := s.writeBackUser(ctx, ours, false); err != nil || !raced {
		t.Fatalf("write: %v (raced %v)", err, raced)
	}
	raw, _ := s.client.HGet(ctx, s.usersKey, identity.UserKey("wxapp", "oRacedWrite")).Result()
	var got session.UserRecord
	if json.Unmarshal([]byte(raw), &got) != nil || got.Ban == nil || !got.RevokedBefore.Equal(ours.RevokedBefore) {
		t.Fatalf("Redis holds %s; want the other instance's ban and this one's cut-off", raw)
	}
}

// TestDecisionOnAnInstanceThatMissedTheLastOneWins: an operator's ban or
// lift made on an instance that had not heard of the decision before it,
// made on an instance whose clock is 5 s ahead, still wins in Redis and
// here: Redis's decision was made before it, whatever the clocks say.
func TestDecisionOnAnInstanceThatMissedTheLastOneWins(t *testing.T) {
	s := loopless(t, rdsStart(t))
	ctx := context.Background()
	ahead := time.Now().Add(5 * time.Second)
	for i, c := range []struct {
		name   string
		before *session.Ban
		after  *session.Ban
	}{
		{"a lift after a ban", &session.Ban{Since: ahead}, nil},
		{"a ban after a lift", nil, &session.Ban{Since: time.Now()}},
		// Dated just after the same decision as Redis's (both instances
		// behind a third): a tie, which the order of bans would give to
		// the ban.
		{"a lift tied with a ban", &session.Ban{Since: ahead}, nil},
	} {
		openid := "oSkewed" + strconv.Itoa(i)
		putUser(t, s, &session.UserRecord{AppID: "wxapp", OpenID: openid, Changed: ahead, BanChanged: ahead, Ban: c.before, Keep: ahead.Add(time.Hour)})
		now := time.Now()
		// This instance heard of nothing: its own decision is dated now.
		decided := now
		if i == 2 {
			decided = ahead
		}
		rec := &session.UserRecord{AppID: "wxapp", OpenID: openid, Changed: now, BanChanged: decided, Ban: c.after, Decided: true}
		if err := s.SaveUser(ctx, rec); err != nil {
			t.Fatal(err)
		}
		raw, _ := s.client.HGet(ctx, s.usersKey, identity.UserKey("wxapp", openid)).Result()
		var got session.UserRecord
		if json.Unmarshal([]byte(raw), &got) != nil || (got.Ban == nil) != (c.after == nil) {
			t.Errorf("%s: Redis holds %s", c.name, raw)
		}
		if (s.Users().Banned("wxapp", openid, time.Now()) == nil) != (c.after == nil) {
			t.Errorf("%s: this instance does not hold the decision it made", c.name)
		}
	}
}

// TestRedisStoreTidiesWithoutALoginOrASync: on a store whose subscription
// never drops and that sees no login, a cut-off that stops mattering
// stops costing the proxied path a lookup within a couple of seconds.
func TestRedisStoreTidiesWithoutALoginOrASync(t *testing.T) {
	s := rdsStore(t, rdsStart(t), rdsKeyA)
	now := time.Now()
	s.Users().Merge(&session.UserRecord{AppID: "wxapp", OpenID: "oTidy", RevokedBefore: now, Keep: now.Add(100 * time.Millisecond), Changed: now})
	old := &identity.Identity{Issued: now.Add(-time.Hour), Key: identity.UserKey("wxapp", "oTidy")}
	if !s.Users().Refused(old) {
		t.Fatal("the cut-off is not in force")
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.Users().Checked() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("3 s after the cut-off stopped mattering, it is still checked on every request")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
