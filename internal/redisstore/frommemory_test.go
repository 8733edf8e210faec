package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestMovingFromTheMemoryStoreKeepsLogoutsAndBans: a deployment that ran
// with the memory store, then starts on Redis, keeps what the memory
// store kept in Caddy's storage: a token logged out before the move stays
// refused, a banned user stays banned, on every instance. A ban lifted in
// Redis after the move is not brought back by a later start, even once
// Redis has forgotten the lift; a ban made with the memory store after
// the first move is carried by the next.
// wxapp is the app of the user records these tests carry.
var wxapp = []string{"wxapp"}

// carry holds what storage keeps on s and starts writing it to Redis.
func carry(t *testing.T, s *Store, storage certmagic.Storage) <-chan error {
	t.Helper()
	c := s.HoldMemoryStore(storage, wxapp)
	if c == nil {
		t.Fatal("nothing to carry")
	}
	return c.Start()
}

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
	if err := mem.SaveUser(ctx, ban("oBannedInMemory", now.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	mem.Destruct()

	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
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
	later := time.Now().Add(time.Second)
	memoryKeep(t, storage, ban("oBannedLater", later))

	c := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, c, storage); err != nil {
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

// flakyStorage fails Load for keys under prefix while failing is set.
type flakyStorage struct {
	*certmagic.FileStorage
	prefix  string
	failing atomic.Bool
}

func (f *flakyStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if f.failing.Load() && strings.HasPrefix(key, f.prefix) {
		return nil, errors.New("storage unavailable")
	}
	return f.FileStorage.Load(ctx, key)
}

// openMemory opens the memory store on storage, as a config before the
// move ran it; the test closes it when it is done with it.
func openMemory(t *testing.T, storage certmagic.Storage) *session.Memory {
	t.Helper()
	mem, err := session.NewMemory(100, storage)
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// memoryKeep keeps recs in storage, as the memory store does.
func memoryKeep(t *testing.T, storage certmagic.Storage, recs ...*session.UserRecord) {
	t.Helper()
	mem := openMemory(t, storage)
	defer mem.Destruct()
	for _, rec := range recs {
		if err := mem.SaveUser(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// memoryLogout keeps in storage, as the memory store does, the logout of
// sid for an hour.
func memoryLogout(t *testing.T, storage certmagic.Storage, sid string) {
	t.Helper()
	mem := openMemory(t, storage)
	defer mem.Destruct()
	if err := mem.Revoke(context.Background(), sid, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// memoryBan keeps a ban of openid made at at in storage, as the memory
// store does, and returns it.
func memoryBan(t *testing.T, storage certmagic.Storage, openid string, at time.Time) *session.UserRecord {
	t.Helper()
	rec := &session.UserRecord{AppID: "wxapp", OpenID: openid, RevokedBefore: session.CutOff(at), Keep: at.Add(time.Hour), Changed: at, Ban: &session.Ban{Since: at}}
	memoryKeep(t, storage, rec)
	return rec
}

// A lift made with the memory store after the ban's cut-off stopped
// mattering (say after a roll back from Redis) is kept in storage, and
// carried: it ends the ban Redis holds.
func TestALiftMadeWithTheMemoryStoreIsCarried(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	ban := oldBan("oLiftedInMemory")
	a := rdsStore(t, srv, rdsKeyA)
	putUser(t, a, ban) // carried by an earlier move
	lift := *ban
	now := time.Now()
	lift.Ban, lift.Changed, lift.BanChanged = nil, now, now
	memoryKeep(t, storage, &lift)
	memoryKeep(t, storage) // a restart of the memory store keeps it

	b := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, b, storage); err != nil {
		t.Fatal(err)
	}
	if rdsStore(t, srv, rdsKeyA).Users().Banned(ban.AppID, ban.OpenID, time.Now()) != nil {
		t.Fatal("a ban lifted with the memory store is still in force on Redis")
	}
}

// A user record the carry cannot read, or a marker it cannot read, leaves
// the marker where it was: the next start carries the record, and a ban
// Redis lifted and forgot does not come back.
func TestACarryThatCannotReadStorageTriesAgain(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	storage := &flakyStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}, prefix: "wechat_auth/users"}
	storage.failing.Store(true)
	banned := memoryBan(t, storage.FileStorage, "oUnreadable", time.Now())

	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err == nil {
		t.Fatal("a carry that could not read a user record reported no error")
	}
	storage.failing.Store(false)
	b := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, b, storage); err != nil {
		t.Fatal(err)
	}
	c := rdsStore(t, srv, rdsKeyA)
	if c.Users().Banned(banned.AppID, banned.OpenID, time.Now()) == nil {
		t.Fatal("a ban the first carry could not read was not carried by the next")
	}

	// Lifted in Redis, and forgotten there; then the marker cannot be read.
	lift := c.Users().Record(banned.AppID, banned.OpenID)
	lift.Ban, lift.Changed, lift.BanChanged, lift.Decided = nil, time.Now(), time.Now(), true
	if err := c.SaveUser(context.Background(), &lift); err != nil {
		t.Fatal(err)
	}
	if err := c.client.HDel(context.Background(), c.usersKey, identity.UserKey(banned.AppID, banned.OpenID)).Err(); err != nil {
		t.Fatal(err)
	}
	storage.prefix = carriedPrefix
	storage.failing.Store(true)
	d := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, d, storage); err == nil {
		t.Fatal("a carry that could not read its marker reported no error")
	}
	if rdsStore(t, srv, rdsKeyA).Users().Banned(banned.AppID, banned.OpenID, time.Now()) != nil {
		t.Fatal("a ban lifted in Redis came back when the marker could not be read")
	}
}

// What the carry reads holds on this instance when HoldMemoryStore
// returns, before Redis has answered; once the carry starts, it reaches
// Redis.
func TestACarryHoldsHereBeforeRedisAnswers(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	banned := memoryBan(t, storage, "oHeldAtOnce", time.Now())
	memoryLogout(t, storage, "sid-held-at-once")

	a := rdsStore(t, srv, rdsKeyA)
	srv.Pause()
	c := a.HoldMemoryStore(storage, wxapp)
	now := time.Now()
	held := a.Revoked("sid-held-at-once", now) && a.Users().Banned(banned.AppID, banned.OpenID, now) != nil
	srv.Resume()
	if !held {
		t.Fatal("the logout and the ban read from storage did not hold here before Redis answered")
	}
	if err := <-c.Start(); err != nil {
		t.Fatal(err)
	}
	b := rdsStore(t, srv, rdsKeyA)
	if !b.Revoked("sid-held-at-once", time.Now()) || b.Users().Banned(banned.AppID, banned.OpenID, time.Now()) == nil {
		t.Fatal("the carried logout and ban did not reach Redis")
	}
}

// The marker is kept per app, whatever the Redis deployment: a deployment
// made later (another signing key, another Redis) does not bring back a
// ban an earlier one lifted. Only the apps asked for are carried; a record
// written just before the marker (a clock behind) still is.
func TestTheCarryMarkerIsPerAppAndNotPerDeployment(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	lifted := memoryBan(t, storage, "oLiftedOnTheFirst", time.Now().Add(-time.Hour))
	other := &session.UserRecord{AppID: "wxother", OpenID: "oOtherApp", Keep: time.Now().Add(time.Hour), Changed: time.Now(), Ban: &session.Ban{Since: time.Now()}}
	memoryKeep(t, storage, other)

	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	if a.Users().Banned("wxother", "oOtherApp", time.Now()) != nil {
		t.Error("a record of an app not asked for was carried")
	}
	lift := a.Users().Record(lifted.AppID, lifted.OpenID)
	lift.Ban, lift.Changed, lift.BanChanged, lift.Decided = nil, time.Now(), time.Now(), true
	if err := a.SaveUser(ctx, &lift); err != nil {
		t.Fatal(err)
	}
	// A ban written by an instance whose clock is 2 s behind, after the carry.
	skewed := memoryBan(t, storage, "oSkewed", time.Now().Add(-2*time.Second))

	b := rdsStore(t, srv, rdsKeyB) // another deployment
	if err := <-carry(t, b, storage); err != nil {
		t.Fatal(err)
	}
	if b.Users().Banned(lifted.AppID, lifted.OpenID, time.Now()) != nil {
		t.Error("a new deployment brought back a ban the first one lifted")
	}
	if b.Users().Banned(skewed.AppID, skewed.OpenID, time.Now()) == nil {
		t.Error("a ban dated 2 s before the last carry was not carried")
	}
}

// Holding what storage keeps writes nothing to Redis nor to storage: that
// waits for Start, which `caddy validate` never reaches.
func TestHoldingTheMemoryStoreWritesNothing(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	banned := memoryBan(t, storage, "oHeldOnly", time.Now())
	a := rdsStore(t, srv, rdsKeyA)
	if a.HoldMemoryStore(storage, wxapp) == nil {
		t.Fatal("nothing to carry")
	}
	if a.Users().Banned(banned.AppID, banned.OpenID, time.Now()) == nil {
		t.Fatal("the ban does not hold here")
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := a.client.HLen(context.Background(), a.usersKey).Result(); err != nil || n != 0 {
		t.Errorf("Redis holds %d user records (%v) before the carry started", n, err)
	}
	if storage.Exists(context.Background(), carriedPrefix+"/wxapp") {
		t.Error("the marker was written before the carry started")
	}
}

// Sites of one process on one Redis store carry each its own apps, the
// second site's too; a logout storage could not read is carried by a
// later pass.
func TestEverySiteCarriesItsAppsAndUnreadLogoutsAreRetried(t *testing.T) {
	metrics.Init(nil)
	carryTimes(t, 50*time.Millisecond, carryMargin)
	srv := rdsStart(t)
	storage := &flakyStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}, prefix: "wechat_auth/revoked"}
	storage.failing.Store(true)
	first := memoryBan(t, storage.FileStorage, "oFirstSite", time.Now())
	second := &session.UserRecord{AppID: "wxsecond", OpenID: "oSecondSite", Keep: time.Now().Add(time.Hour), Changed: time.Now(), Ban: &session.Ban{Since: time.Now()}}
	memoryKeep(t, storage.FileStorage, second)
	memoryLogout(t, storage.FileStorage, "sid-unread-at-first")

	a := rdsStore(t, srv, rdsKeyA)
	c1 := a.HoldMemoryStore(storage, wxapp)
	c2 := a.HoldMemoryStore(storage, []string{"wxapp", "wxsecond"})
	if c1 == nil || c2 == nil {
		t.Fatal("a site had nothing to carry")
	}
	if err := <-c1.Start(); err == nil {
		t.Error("a pass that could not read a logout reported no error")
	}
	<-c2.Start()
	storage.failing.Store(false)
	b := rdsStore(t, srv, rdsKeyA)
	if !rdsEventually(5*time.Second, func() bool { return b.Revoked("sid-unread-at-first", time.Now()) }) {
		t.Error("a logout the first pass could not read never reached Redis")
	}
	for _, rec := range []*session.UserRecord{first, second} {
		if !rdsEventually(5*time.Second, func() bool { return b.Users().Banned(rec.AppID, rec.OpenID, time.Now()) != nil }) {
			t.Errorf("the ban of %s's site was not carried", rec.AppID)
		}
	}
}

// countingStorage counts the loads of user records, and fails the first
// failFirst of them.
type countingStorage struct {
	*certmagic.FileStorage
	loads     atomic.Int32
	failFirst atomic.Int32
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, "wechat_auth/users") {
		c.loads.Add(1)
		if c.failFirst.Add(-1) >= 0 {
			return nil, errors.New("storage unavailable")
		}
	}
	return c.FileStorage.Load(ctx, key)
}

// carryTimes sets the carry's waits (to try again, to settle) for a test.
func carryTimes(t *testing.T, retry, settle time.Duration) {
	carryRetry, carrySettle = retry, settle
	t.Cleanup(func() { carryRetry, carrySettle = time.Minute, carryMargin })
}

// shortRetries makes the carry try again within milliseconds.
func shortRetries(t *testing.T) { carryTimes(t, 50*time.Millisecond, 50*time.Millisecond) }

// A record a pass could not read, read by a later pass, is carried by the
// app's marker like the others: an old ban lifted in Redis, and forgotten
// there, does not come back.
func TestARecordReadOnALaterPassKeepsToTheMarker(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	storage := &countingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	banned := memoryBan(t, storage.FileStorage, "oLiftedAndForgotten", time.Now().Add(-time.Hour))
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	lift := a.Users().Record(banned.AppID, banned.OpenID)
	lift.Ban, lift.Changed, lift.BanChanged, lift.Decided = nil, time.Now(), time.Now(), true
	if err := a.SaveUser(context.Background(), &lift); err != nil {
		t.Fatal(err)
	}
	if err := a.client.HDel(context.Background(), a.usersKey, identity.UserKey(banned.AppID, banned.OpenID)).Err(); err != nil {
		t.Fatal(err)
	}
	storage.failFirst.Store(2) // the hold's read and the first pass's
	b := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, b, storage); err == nil {
		t.Fatal("a pass that could not read a record reported no error")
	}
	if !rdsEventually(2*time.Second, func() bool { return storage.loads.Load() >= 3 }) {
		t.Fatal("no later pass read the record")
	}
	time.Sleep(200 * time.Millisecond)
	if rdsStore(t, srv, rdsKeyA).Users().Banned(banned.AppID, banned.OpenID, time.Now()) != nil {
		t.Fatal("a ban lifted in Redis came back when a later pass read it")
	}
}

// Once all of an app's records were carried, a reload reads none of them
// again, until a memory store of the process writes one.
func TestAReloadReadsTheRecordsAgainOnlyAfterAWrite(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	storage := &countingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	memoryBan(t, storage.FileStorage, "oReadOnce", time.Now())
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	storage.loads.Store(0)
	a.HoldMemoryStore(storage, wxapp)
	if n := storage.loads.Load(); n != 0 {
		t.Errorf("a reload read %d user records that were all carried", n)
	}
	later := memoryBan(t, storage.FileStorage, "oWrittenSince", time.Now())
	a.HoldMemoryStore(storage, wxapp)
	if storage.loads.Load() == 0 || a.Users().Banned(later.AppID, later.OpenID, time.Now()) == nil {
		t.Error("a reload after a memory store wrote a record did not read it")
	}
}

// A carry started while another runs hands it its storage and apps, and
// has it make a pass at once, even from a wait to try again; a pass a
// little after the first complete one carries what the config before
// wrote meanwhile.
func TestACarryStartedWhileAnotherRunsIsTakenUp(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	carryTimes(t, time.Hour, 300*time.Millisecond)
	old := &flakyStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}, prefix: "wechat_auth/users"}
	memoryBan(t, old.FileStorage, "oInTheOldStorage", time.Now())
	old.failing.Store(true) // the running carry waits an hour to try again
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-a.HoldMemoryStore(old, wxapp).Start(); err == nil {
		t.Fatal("a pass that could not read reported no error")
	}
	newer := &certmagic.FileStorage{Path: t.TempDir()}
	second := &session.UserRecord{AppID: "wxsecond", OpenID: "oInTheNewStorage", Keep: time.Now().Add(time.Hour), Changed: time.Now(), Ban: &session.Ban{Since: time.Now()}}
	mem := openMemory(t, newer)
	if err := mem.SaveUser(context.Background(), second); err != nil {
		t.Fatal(err)
	}
	<-a.HoldMemoryStore(newer, []string{"wxsecond"}).Start()
	b := rdsStore(t, srv, rdsKeyA)
	if !rdsEventually(3*time.Second, func() bool { return b.Users().Banned(second.AppID, second.OpenID, time.Now()) != nil }) {
		t.Fatal("the running carry did not take up the new storage's app at once")
	}
	if !rdsEventually(2*time.Second, func() bool { return newer.Exists(context.Background(), carriedPrefix+"/wxsecond") }) {
		t.Error("the marker was not written in the new storage")
	}
	// Written by the config before, after the first complete pass.
	late := &session.UserRecord{AppID: "wxsecond", OpenID: "oWrittenLate", Keep: time.Now().Add(time.Hour), Changed: time.Now(), Ban: &session.Ban{Since: time.Now()}}
	if err := mem.SaveUser(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	mem.Destruct()
	if !rdsEventually(3*time.Second, func() bool { return b.Users().Banned(late.AppID, late.OpenID, time.Now()) != nil }) {
		t.Error("a ban the config before wrote after the first pass was not carried")
	}
}

// Two sites starting the carry back to back still have it make the pass a
// little after the first complete one.
func TestTwoStartsKeepTheSettlePass(t *testing.T) {
	metrics.Init(nil)
	srv := rdsStart(t)
	carryTimes(t, time.Hour, 300*time.Millisecond)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	a := rdsStore(t, srv, rdsKeyA)
	c1, c2 := a.HoldMemoryStore(storage, wxapp), a.HoldMemoryStore(storage, wxapp)
	if err := <-c1.Start(); err != nil {
		t.Fatal(err)
	}
	<-c2.Start()
	time.Sleep(50 * time.Millisecond)
	late := memoryBan(t, storage, "oLateAfterTwoStarts", time.Now())
	b := rdsStore(t, srv, rdsKeyA)
	if !rdsEventually(3*time.Second, func() bool { return b.Users().Banned(late.AppID, late.OpenID, time.Now()) != nil }) {
		t.Error("a ban written just after the first pass was not carried when two sites started the carry")
	}
}

// A record another process wrote into shared storage (no write of this
// process to tell of it) is carried by the next carry, though a reload's
// hold may skip reading it.
func TestARecordAnotherProcessWroteIsCarried(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec := session.UserRecord{AppID: "wxapp", OpenID: "oOtherProcess", Keep: now.Add(time.Hour), Changed: now, Ban: &session.Ban{Since: now}}
	b, _ := json.Marshal(rec)
	key := "wechat_auth/users/" + base64.RawURLEncoding.EncodeToString([]byte(identity.UserKey(rec.AppID, rec.OpenID)))
	if err := storage.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	if err := <-a.HoldMemoryStore(storage, wxapp).Start(); err != nil {
		t.Fatal(err)
	}
	if !rdsEventually(2*time.Second, func() bool { return rdsStore(t, srv, rdsKeyA).Users().Banned(rec.AppID, rec.OpenID, time.Now()) != nil }) {
		t.Fatal("a ban another process wrote into shared storage was not carried")
	}
}

// slowStorage takes a while to store.
type slowStorage struct {
	*certmagic.FileStorage
}

func (s slowStorage) Store(ctx context.Context, key string, value []byte) error {
	time.Sleep(300 * time.Millisecond)
	return s.FileStorage.Store(ctx, key, value)
}

// A read of storage while a memory store's write is under way misses the
// record; the next hold reads it.
func TestAHoldReadsARecordWrittenDuringTheLastRead(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	mem := openMemory(t, slowStorage{storage})
	defer mem.Destruct()
	now := time.Now()
	rec := &session.UserRecord{AppID: "wxapp", OpenID: "oWrittenSlowly", Keep: now.Add(time.Hour), Changed: now, Ban: &session.Ban{Since: now}}
	done := make(chan error, 1)
	go func() { done <- mem.SaveUser(context.Background(), rec) }()
	time.Sleep(100 * time.Millisecond)
	if err := <-a.HoldMemoryStore(storage, wxapp).Start(); err != nil { // reads while the write is under way
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a.HoldMemoryStore(storage, wxapp)
	if a.Users().Banned(rec.AppID, rec.OpenID, time.Now()) == nil {
		t.Fatal("a hold after a write that ended after the last read did not read it")
	}
}

// plainStorage is storage without a String method.
type plainStorage struct{ s certmagic.Storage }

func (p plainStorage) Lock(ctx context.Context, name string) error   { return p.s.Lock(ctx, name) }
func (p plainStorage) Unlock(ctx context.Context, name string) error { return p.s.Unlock(ctx, name) }
func (p plainStorage) Store(ctx context.Context, key string, value []byte) error {
	return p.s.Store(ctx, key, value)
}
func (p plainStorage) Load(ctx context.Context, key string) ([]byte, error) {
	return p.s.Load(ctx, key)
}
func (p plainStorage) Delete(ctx context.Context, key string) error { return p.s.Delete(ctx, key) }
func (p plainStorage) Exists(ctx context.Context, key string) bool  { return p.s.Exists(ctx, key) }
func (p plainStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	return p.s.List(ctx, path, recursive)
}
func (p plainStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	return p.s.Stat(ctx, key)
}

// Storage that cannot be told apart across configs (no String) is read
// at every hold.
func TestStorageWithoutANameIsAlwaysRead(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	counted := &countingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	memoryBan(t, counted.FileStorage, "oUnnamedStorage", time.Now())
	storage := plainStorage{counted}
	a := rdsStore(t, srv, rdsKeyA)
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	counted.loads.Store(0)
	a.HoldMemoryStore(storage, wxapp)
	if counted.loads.Load() == 0 {
		t.Error("a hold on storage without a name skipped reading the user records")
	}
}

// A carry writes each record once: nothing is queued behind it and
// written again by the retry loop as if Redis had lost it.
func TestACarryWritesEachRecordOnce(t *testing.T) {
	metrics.Init(nil)
	shortRetries(t)
	srv := rdsStart(t)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	memoryBan(t, storage, "oWrittenOnce", time.Now())
	memoryLogout(t, storage, "sid-written-once")
	conn, err := ConnFromURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	a, err := New(conn, keyring.New(rdsKeyA), 1000, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Destruct() })
	if err := <-carry(t, a, storage); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the retry loop's tick
	if n := len(logs.FilterMessageSnippet("wrote user records Redis did not have").All()); n != 0 {
		t.Errorf("the retry loop wrote carried records again (%d log lines)", n)
	}
}
