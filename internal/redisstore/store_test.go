package redisstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/opendata"
	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// rdsServer is a real redis-server for the test (internal/redistest).
type rdsServer = redistest.Server

func rdsStart(t testing.TB, extra ...string) *rdsServer { return redistest.Start(t, extra...) }

func rdsFreePort(t testing.TB) int { return redistest.FreePort(t) }

var (
	rdsKeyA = []byte("signing-key-A-for-redis-store-tests-0123456789")
	rdsKeyB = []byte("signing-key-B-for-redis-store-tests-9876543210")
)

// rdsStore opens a Store on srv with signing key key, as a Caddy
// instance would, and closes it when the test ends.
func rdsStore(t *testing.T, srv *rdsServer, key []byte) *Store {
	t.Helper()
	conn, err := ConnFromURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return rdsOpen(t, conn, key)
}

// rdsVectorSession is a session holding the session_key of WeChat's test
// vector, under a fresh sid.
func rdsVectorSession() *session.Session {
	v := wechattest.UserInfoVector
	return &session.Session{SID: session.NewID(), AppID: v.AppID, OpenID: v.OpenID, UnionID: v.UnionID, SessionKey: v.SessionKey, Created: time.Now()}
}

// rdsEventually polls cond every 10 ms until it holds or within passes.
func rdsEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisStoreKeepsNoSessionKeyInTheClear(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	s := rdsVectorSession()
	if err := a.Put(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, session.NewID(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// Everything Redis holds, as values and as DUMP would write it.
	c := srv.Client()
	defer c.Close()
	all := bytes.NewBuffer(redistest.Dump(t, c))
	if !strings.Contains(all.String(), s.OpenID) {
		t.Fatal("the session is not in Redis")
	}
	raw, _ := base64.StdEncoding.DecodeString(s.SessionKey)
	if strings.Contains(all.String(), s.SessionKey) {
		t.Error("Redis holds the session_key's base64 text")
	}
	if bytes.Contains(all.Bytes(), raw) {
		t.Error("Redis holds the session_key's bytes")
	}

	// Another instance with the same key reads it back and can decrypt
	// the vector; one with another key sees nothing.
	b := rdsStore(t, srv, rdsKeyA)
	got, err := b.Get(ctx, s.SID)
	if err != nil {
		t.Fatalf("other instance: %v", err)
	}
	if *got != (session.Session{SID: s.SID, AppID: s.AppID, OpenID: s.OpenID, UnionID: s.UnionID, SessionKey: s.SessionKey, Created: got.Created}) ||
		got.Created.UnixMilli() != s.Created.UnixMilli() {
		t.Errorf("other instance read %+v, want %+v", got, s)
	}
	v := wechattest.UserInfoVector
	if _, err := opendata.Decrypt(got.SessionKey, v.EncryptedData, v.IV); err != nil {
		t.Errorf("the session read back does not decrypt WeChat's vector: %v", err)
	}
	other := rdsStore(t, srv, rdsKeyB)
	if _, err := other.Get(ctx, s.SID); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("an instance with another signing key read the session: %v", err)
	}
}

func TestRedisStoreTamperedRecordIsAnExpiredSession(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	victim, attacker := rdsVectorSession(), rdsVectorSession()
	attacker.OpenID, attacker.SessionKey = "oAttacker", "AAAAAAAAAAAAAAAAAAAAAA=="
	a.Put(ctx, victim, time.Hour)
	a.Put(ctx, attacker, time.Hour)

	// Someone with write access to Redis copies the victim's record under
	// the attacker's sid, hoping the attacker's token now decrypts with
	// the victim's key.
	c := srv.Client()
	defer c.Close()
	rec := c.Get(ctx, a.sessionPrefix+victim.SID).Val()
	c.Set(ctx, a.sessionPrefix+attacker.SID, rec, time.Hour)

	b := rdsStore(t, srv, rdsKeyA)
	if s, err := b.Get(ctx, attacker.SID); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("a record moved to another sid was accepted: %+v, %v", s, err)
	}
}

func TestRedisStoreServesRepeatReadsFromMemory(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	s := rdsVectorSession()
	a.Put(ctx, s, time.Hour)
	c := srv.Client()
	defer c.Close()
	before := rdsCommandCount(t, c)
	for range 100 {
		if _, err := a.Get(ctx, s.SID); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdsCommandCount(t, c) - before; n > 5 {
		t.Errorf("100 reads of a cached session made %d Redis commands", n)
	}
	// A session read from Redis once is cached too.
	b := rdsStore(t, srv, rdsKeyA)
	if _, err := b.Get(ctx, s.SID); err != nil {
		t.Fatal(err)
	}
	b.cache.Wait() // ristretto applies a Set asynchronously
	c.FlushAll(ctx)
	if _, err := b.Get(ctx, s.SID); err != nil {
		t.Errorf("a session read once is not cached: %v", err)
	}
}

func rdsCommandCount(t testing.TB, c *redis.Client) int { return redistest.CommandCount(t, c) }

func TestRedisRevocationReachesOtherInstancesWithinASecond(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	s := rdsVectorSession()
	a.Put(ctx, s, time.Hour)
	if _, err := b.Get(ctx, s.SID); err != nil { // now in b's L1 too
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // b has subscribed
	if b.Revoked(s.SID, time.Now()) {
		t.Fatal("revoked before the logout")
	}
	start := time.Now()
	if err := a.Revoke(ctx, s.SID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !rdsEventually(time.Second, func() bool { return b.Revoked(s.SID, time.Now()) }) {
		t.Fatal("the revocation did not reach the other instance within 1 s")
	}
	t.Logf("revocation reached the other instance in %v", time.Since(start))

	// An instance started later loads it, and no store forgets it early.
	c := rdsStore(t, srv, rdsKeyA)
	if !c.Revoked(s.SID, time.Now()) {
		t.Error("an instance started after the logout accepts the session")
	}
	if c.Revoked(s.SID, time.Now().Add(2*time.Hour)) {
		t.Error("the revocation outlives every token of the session")
	}
}

func TestRedisRevocationsMissedWhileDisconnectedAreMergedOnReconnect(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	time.Sleep(100 * time.Millisecond) // a has subscribed
	c := srv.Client()
	defer c.Close()

	// A revocation written while a was not listening: in the list, never
	// published to a.
	sid := session.NewID()
	until := time.Now().Add(time.Hour)
	c.ZAdd(ctx, a.revokedKey, redis.Z{Score: float64(until.UnixMilli()), Member: sid})
	time.Sleep(100 * time.Millisecond)
	if a.Revoked(sid, time.Now()) {
		t.Fatal("test setup: the revocation reached the instance without a reconnect")
	}
	if err := c.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if !rdsEventually(5*time.Second, func() bool { return a.Revoked(sid, time.Now()) }) {
		t.Fatal("the instance did not merge the revocation list after reconnecting")
	}
}

// TestRedisL1IsReadAgainAfterAMissedMessage checks that sessions cached
// while an instance could have missed a message are read from Redis again
// once it listens again: here a session_key replaced in Redis, its
// "rekeyed" message never heard, as when it is published while the
// subscription is down.
func TestRedisL1IsReadAgainAfterAMissedMessage(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	c := srv.Client()
	defer c.Close()
	if !rdsEventually(2*time.Second, func() bool {
		n, err := c.PubSubNumSub(ctx, a.channel).Result()
		return err == nil && n[a.channel] > 0
	}) {
		t.Fatal("test setup: the instance does not subscribe")
	}
	s := rdsVectorSession()
	if err := a.Put(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The test needs the session in a's L1, after a has emptied L1 on
	// subscribing, and ristretto may drop a Set.
	if !rdsEventually(2*time.Second, func() bool {
		if _, ok := a.cache.Get(s.SID); !ok {
			session.CachePut(a.cache, s, time.Hour)
			return false
		}
		return true
	}) {
		t.Fatal("test setup: the session does not stay in L1")
	}
	// The new key written straight into Redis: nothing is published.
	ns := *s
	ns.SessionKey = wechattest.NewSessionKey()
	sealed, err := a.seal(&ns, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, a.sessionKey(s.SID), sealed, redis.KeepTTL).Err(); err != nil {
		t.Fatal(err)
	}
	if got, ok := a.cache.Get(s.SID); !ok || got.SessionKey != s.SessionKey {
		t.Fatal("test setup: the instance does not hold the old key in L1")
	}
	if err := c.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if !rdsEventually(5*time.Second, func() bool {
		got, err := a.Get(ctx, s.SID)
		return err == nil && got.SessionKey == ns.SessionKey
	}) {
		t.Fatal("after listening again the instance still decrypts with a session_key Redis no longer holds")
	}
}

func TestRedisStoreRefusesToStartWithoutRedis(t *testing.T) {
	metrics.Init(nil)
	url := fmt.Sprintf("redis://:hunter2-password@127.0.0.1:%d", rdsFreePort(t))
	conn, err := ConnFromURL(url)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = New(conn, keyring.New(rdsKeyA), 0, zap.NewNop())
	if err == nil {
		t.Fatal("started without its revocation list")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to give up", d)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
	if _, err := ConnFromURL("http://:hunter2-password@example.com"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad URL: %v", err)
	}
}

func TestRedisOutageFailsFastAndRecovers(t *testing.T) {
	for _, tc := range []struct {
		name          string
		down, back    func(*rdsServer)
		restartsEmpty bool
	}{
		{"hung", (*rdsServer).Pause, (*rdsServer).Resume, false},
		{"stopped", (*rdsServer).Stop, (*rdsServer).Start, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := rdsStart(t)
			a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
			ctx := context.Background()
			cached := rdsVectorSession()
			a.Put(ctx, cached, time.Hour)
			before := session.NewID() // revoked before the outage
			a.Revoke(ctx, before, time.Now().Add(time.Hour))

			tc.down(srv)
			defer tc.back(srv) // a failed check must not leave it frozen

			timed := func(name string, f func() error) error {
				t.Helper()
				start := time.Now()
				err := f()
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s took %v with Redis %s", name, d, tc.name)
				}
				return err
			}
			if _, err := a.Get(ctx, cached.SID); err != nil {
				t.Errorf("a cached session is not served: %v", err)
			}
			if err := timed("Get of an uncached session", func() error { _, err := a.Get(ctx, session.NewID()); return err }); !errors.Is(err, session.ErrStoreDown) {
				t.Errorf("Get of an uncached session: %v, want session.ErrStoreDown", err)
			}
			if err := timed("Put", func() error { return a.Put(ctx, rdsVectorSession(), time.Hour) }); !errors.Is(err, session.ErrStoreDown) {
				t.Errorf("Put: %v, want session.ErrStoreDown", err)
			}
			during := session.NewID()
			if err := timed("Revoke", func() error { return a.Revoke(ctx, during, time.Now().Add(time.Hour)) }); !errors.Is(err, session.ErrStoreDown) {
				t.Errorf("Revoke: %v, want session.ErrStoreDown", err)
			}
			if !a.Revoked(during, time.Now()) || !a.Revoked(before, time.Now()) || a.Revoked(cached.SID, time.Now()) {
				t.Error("the in-process revocation list is wrong during the outage")
			}

			tc.back(srv)
			if !rdsEventually(5*time.Second, func() bool { return a.Put(ctx, rdsVectorSession(), time.Hour) == nil }) {
				t.Fatal("writes do not work again within 5 s")
			}
			// The logout made during the outage is shared once Redis is
			// back, and, after a restart that lost Redis's data, so is
			// the one made before.
			if !rdsEventually(5*time.Second, func() bool { return b.Revoked(during, time.Now()) }) {
				t.Error("the revocation made during the outage never reached the other instance")
			}
			c := srv.Client()
			defer c.Close()
			if !rdsEventually(5*time.Second, func() bool {
				n, _ := c.ZScore(ctx, a.revokedKey, before).Result()
				return n > 0
			}) {
				t.Error("a revocation lost by Redis is not written back")
			}
			if tc.restartsEmpty {
				fresh := rdsStore(t, srv, rdsKeyA)
				if !fresh.Revoked(before, time.Now()) || !fresh.Revoked(during, time.Now()) {
					t.Error("an instance started after the Redis restart does not know the revocations")
				}
			}
		})
	}
}

// Instances on one Redis may have different token_ttl: a logout on the one
// with the shorter ttl must still revoke until the longest token any of
// them issued has expired.
func TestRedisTokenHorizonIsSharedByInstances(t *testing.T) {
	srv := rdsStart(t)
	long, short := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	exp := time.Now().Add(48 * time.Hour)
	if err := long.ExtendHorizon(ctx, exp); err != nil {
		t.Fatal(err)
	}
	hz, err := short.Horizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hz.Before(exp) {
		t.Fatalf("the other instance's horizon is %v, before the longest token's exp %v", hz, exp)
	}
	// A shorter token does not pull the horizon back.
	if err := short.ExtendHorizon(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if hz, _ := long.Horizon(ctx); hz.Before(exp) {
		t.Fatalf("horizon fell back to %v", hz)
	}
	// Redis down: issuing a token past the horizon is refused, not promised.
	srv.Stop()
	if err := short.ExtendHorizon(ctx, exp.Add(time.Hour)); !errors.Is(err, session.ErrStoreDown) {
		t.Fatalf("ExtendHorizon with Redis down: %v, want session.ErrStoreDown", err)
	}
	if err := short.ExtendHorizon(ctx, exp); err != nil {
		t.Fatalf("a token within the horizon needs no Redis: %v", err)
	}
}

// Logins stored at the same moment share round trips to Redis, yet each
// Put answers for its own session only: every session acknowledged is in
// Redis (read back by another instance, whose L1 is empty), and a session
// Redis refuses fails alone, with store_unavailable, as does one whose
// caller gave up.
func TestRedisConcurrentPutsAnswerEachForItself(t *testing.T) {
	srv := rdsStart(t)
	a := rdsStore(t, srv, rdsKeyA)
	b := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()

	// A user whose index key holds a string: Redis refuses ZADD there.
	bad := rdsVectorSession()
	bad.OpenID = "oRefusedByRedis"
	c := srv.Client()
	defer c.Close()
	if err := c.Set(ctx, redisUserKey(a.sessionPrefix, bad.AppID, bad.OpenID), "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()

	const n = 200
	sessions := make([]*session.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := rdsVectorSession()
		s.OpenID = fmt.Sprintf("oConcurrent%d", i)
		pctx := ctx
		switch i {
		case 50, 150:
			s = bad
		case 100:
			pctx = gone
		}
		sessions[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Put(pctx, s, time.Hour)
		}()
	}
	wg.Wait()
	for i, s := range sessions {
		switch {
		case s == bad || i == 100:
			if !errors.Is(errs[i], session.ErrStoreDown) {
				t.Errorf("Put %d: %v, want store unavailable", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("Put %d: %v", i, errs[i])
		default:
			got, err := b.Get(ctx, s.SID)
			if err != nil || got.OpenID != s.OpenID || got.SessionKey != s.SessionKey {
				t.Errorf("session %d read back: %+v, %v", i, got, err)
			}
			if sids := c.ZRange(ctx, redisUserKey(a.sessionPrefix, s.AppID, s.OpenID), 0, -1).Val(); len(sids) != 1 || sids[0] != s.SID {
				t.Errorf("session %d: the user's index holds %v, want [%s]", i, sids, s.SID)
			}
		}
	}
}

func TestRedisStoreFindsTheNewestLiveSessionFromAnyInstance(t *testing.T) {
	srv := rdsStart(t)
	testNewestSession(t, rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA))
}

// testNewestSession (a copy of internal/session's) runs the newest-live-session rules against a store:
// each login is the newest, a logged-out or revoked one gives way to the
// one before, none live is session.ErrNoUserSession, and a replaced key is what
// later reads see (from a second store on the same backend too, when
// given).
func testNewestSession(t *testing.T, st, other session.Store) {
	ctx := context.Background()
	openid := "oNewest" + session.NewID()[:10]
	login := func(ago time.Duration) *session.Session {
		s := &session.Session{SID: session.NewID(), AppID: "wxnewest", OpenID: openid, SessionKey: wechattest.NewSessionKey(), Created: time.Now().Add(-ago)}
		if err := st.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := login(2 * time.Second)
	second := login(time.Second)
	third := login(0)
	if got, err := st.NewestSession(ctx, "wxnewest", openid); err != nil || got.SID != third.SID {
		t.Fatalf("newest session is %+v (%v), want the third login", got, err)
	}
	// Another user of the same app and the same user of another app are
	// not this user.
	if _, err := st.NewestSession(ctx, "wxother", openid); !errors.Is(err, session.ErrNoUserSession) {
		t.Fatalf("another app's user: %v, want session.ErrNoUserSession", err)
	}
	// Logout of the newest: revoked and deleted.
	st.Revoke(ctx, third.SID, time.Now().Add(time.Hour))
	st.Delete(ctx, third.SID)
	got, err := st.NewestSession(ctx, "wxnewest", openid)
	if err != nil || got.SID != second.SID {
		t.Fatalf("after logging out the newest: %+v %v, want the second login", got, err)
	}
	if other != nil {
		// The other instance holds the session in its L1 now.
		if o, err := other.NewestSession(ctx, "wxnewest", openid); err != nil || o.SID != second.SID {
			t.Fatalf("another instance finds %+v (%v), want the second login", o, err)
		}
	}
	newKey := wechattest.NewSessionKey()
	if err := st.SetSessionKey(ctx, got, newKey); err != nil {
		t.Fatal(err)
	}
	if got, err := st.NewestSession(ctx, "wxnewest", openid); err != nil || got.SessionKey != newKey {
		t.Fatalf("after a key reset the session has key %v (%v), want the new one", got, err)
	}
	if other != nil && !rdsEventually(time.Second, func() bool {
		got, err := other.NewestSession(ctx, "wxnewest", openid)
		return err == nil && got.SessionKey == newKey
	}) {
		t.Fatal("another instance still reads the old session_key a second after the reset")
	}
	st.Revoke(ctx, second.SID, time.Now().Add(time.Hour))
	st.Delete(ctx, first.SID)
	if s, err := st.NewestSession(ctx, "wxnewest", openid); !errors.Is(err, session.ErrNoUserSession) {
		t.Fatalf("with every session ended: %+v %v, want session.ErrNoUserSession", s, err)
	}
}

// Opening a store and using it as the documented ACL's user makes Redis
// count no error and refuse no command: go-redis's probes that an older
// Redis or that ACL refuses are off.
func TestRedisStoreOpensWithoutErrors(t *testing.T) {
	srv := rdsStart(t)
	srv.SetUser(t, redistest.ACL)
	admin := srv.Client()
	defer admin.Close()
	ctx := context.Background()
	errorsSeen := func() string {
		var out []string
		for _, l := range strings.Split(admin.Info(ctx, "errorstats").Val(), "\n") {
			// NOSCRIPT is EVALSHA's answer for a script not cached yet,
			// which go-redis follows with EVAL, as designed.
			if strings.HasPrefix(l, "errorstat_") && !strings.HasPrefix(l, "errorstat_NOSCRIPT") {
				out = append(out, strings.TrimSpace(l))
			}
		}
		return strings.Join(out, " ")
	}
	before := errorsSeen()
	conn, err := ConnFromURL("redis://" + redistest.ACLUser + ":" + redistest.ACLPassword + "@" + srv.Addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	st := rdsOpen(t, conn, rdsKeyA)
	if err := st.PutOnce(ctx, "web_state:E", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if after := errorsSeen(); after != before {
		t.Errorf("Redis counted errors: before %q, after %q", before, after)
	}
	if log := admin.Do(ctx, "ACL", "LOG").Val(); log != nil && len(log.([]any)) > 0 {
		t.Errorf("the ACL log holds %d refusals", len(log.([]any)))
	}
}

// Two instances replacing one session's key at once end up reading the
// key Redis holds, whichever write came last: an instance does not put its
// own new key in its L1 after writing it, where it could land after the
// other instance's later key had dropped that copy.
func TestRedisConcurrentKeyResetsLeaveNoStaleCopy(t *testing.T) {
	srv := rdsStart(t)
	a, b, c := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	s := rdsVectorSession()
	if err := a.Put(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	read := func(st *Store) string {
		got, err := st.Get(ctx, s.SID)
		if err != nil {
			t.Fatal(err)
		}
		return got.SessionKey
	}
	for round := range 60 {
		read(a) // both hold the session in L1
		read(b)
		var wg sync.WaitGroup
		for _, st := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := st.SetSessionKey(ctx, s, wechattest.NewSessionKey()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // the rekeyed messages arrive
		c.cache.Del(s.SID)                // no L1 copy: what Redis holds
		want := read(c)
		if ka, kb := read(a), read(b); ka != want || kb != want {
			t.Fatalf("round %d: the instances read %t and %t for Redis's key (true: the same)", round, ka == want, kb == want)
		}
	}
}
