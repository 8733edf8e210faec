package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
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

// rdsStoreOn opens a Store on the Redis cfg describes, with signing
// key rdsKeyA, as a Caddy instance would.
func rdsStoreOn(t *testing.T, cfg Options) *Store {
	t.Helper()
	conn, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rdsOpen(t, conn, rdsKeyA)
}

// rdsOpen opens a Store on conn with signing key key, and closes it
// when the test ends.
func rdsOpen(t *testing.T, conn *Conn, key []byte) *Store {
	t.Helper()
	metrics.Init(nil)
	st, err := New(conn, keyring.New(key), 1000, zap.NewNop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { st.Destruct() })
	return st
}

// rdsRevokeConfirmed revokes sid until st answers that a replica confirmed
// it. On a loaded machine a replica may miss WAIT's deadline, and then the
// store rightly answers errReplicaLag; a healthy replica confirms within
// a few tries.
func rdsRevokeConfirmed(t *testing.T, st *Store, sid string) {
	t.Helper()
	var err error
	for range 5 {
		if err = st.Revoke(context.Background(), sid, time.Now().Add(time.Hour)); err == nil {
			return
		}
		if !errors.Is(err, errReplicaLag) {
			break
		}
	}
	t.Fatalf("revoke with a healthy replica: %v", err)
}

// rdsWantDecrypts requires st to read s and its session_key to decrypt
// WeChat's vector.
func rdsWantDecrypts(t *testing.T, st *Store, s *session.Session) {
	t.Helper()
	got, err := st.Get(context.Background(), s.SID)
	if err != nil {
		t.Fatalf("Get %s: %v", s.SID, err)
	}
	v := wechattest.UserInfoVector
	if _, err := opendata.Decrypt(got.SessionKey, v.EncryptedData, v.IV); err != nil {
		t.Errorf("the session read back does not decrypt WeChat's vector: %v", err)
	}
}

// The ACLs docs/redis.md gives: the tests that use them show they are
// enough.
const (
	rdsACL         = redistest.ACL
	rdsACLPassword = redistest.ACLPassword
	rdsSentinelACL = redistest.SentinelACL
)

// rdsSetACL creates the user wechat_auth with rdsACL on the server.
func rdsSetACL(t *testing.T, s *rdsServer) { rdsSetUser(t, s, rdsACL) }

// rdsSetUser creates the user wechat_auth with the ACL rule on the server.
func rdsSetUser(t *testing.T, s *rdsServer, rule string) { s.SetUser(t, rule) }

func TestRedisClusterStoreSharesSessionsAndLogoutsOverNodes(t *testing.T) {
	cluster := redistest.StartCluster(t)
	for _, n := range cluster.Nodes {
		rdsSetACL(t, n)
	}
	cfg := Options{Addrs: cluster.Addrs, Username: "wechat_auth", Password: rdsACLPassword}
	a, b := rdsStoreOn(t, cfg), rdsStoreOn(t, cfg)
	ctx := context.Background()

	var sessions []*session.Session
	for range 30 {
		s := rdsVectorSession()
		if err := a.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	for _, s := range sessions {
		rdsWantDecrypts(t, b, s)
	}
	t.Run("one-time values are taken on another instance and bounded", func(t *testing.T) {
		if err := a.PutOnce(ctx, "web_state:C1", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := b.Take(ctx, "web_state:C1"); !ok || err != nil || string(v) != "v" {
			t.Fatalf("take on the other instance: %q %v %v", v, ok, err)
		}
		rdsWantOnceBounded(t, a, b, cluster.Primaries())
		if holding := cluster.PrimariesHolding(a.oncePrefix + "*"); holding < 2 {
			t.Errorf("the one-time values are on %d primary", holding)
		}
	})
	t.Run("sessions spread over the primaries", func(t *testing.T) {
		holding := cluster.PrimariesHolding(a.sessionPrefix + "*")
		if holding < 2 {
			t.Errorf("30 sessions are on %d primary", holding)
		}
	})

	t.Run("repeat reads come from memory", func(t *testing.T) {
		// Once a's subscription is up its L1 is not cleared again, and
		// once ristretto applied the fill (asynchronously) reads hit it.
		select {
		case <-a.listening:
		case <-time.After(10 * time.Second):
			t.Fatal("the store never subscribed to the revocation channel")
		}
		if _, err := a.Get(ctx, sessions[1].SID); err != nil {
			t.Fatal(err)
		}
		a.cache.Wait()
		// Only reads count: the nodes also run the Cluster's and the
		// replicas' own commands meanwhile.
		before := cluster.CommandStats()
		for range 100 {
			if _, err := a.Get(ctx, sessions[1].SID); err != nil {
				t.Fatal(err)
			}
		}
		after := cluster.CommandStats()
		if n := after["get"] - before["get"]; n > 5 {
			t.Errorf("100 reads of a cached session made %d Redis reads over the nodes", n)
		}
	})

	t.Run("a logout reaches the other store, and subscribers on every node", func(t *testing.T) {
		// A plain subscriber on each node: a PUBLISH (not SPUBLISH) is
		// broadcast over the Cluster bus.
		var subs []*redis.PubSub
		for _, n := range cluster.Nodes {
			c := n.Client()
			defer c.Close()
			ps := c.Subscribe(ctx, a.channel)
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, ps)
		}
		time.Sleep(100 * time.Millisecond) // b has subscribed
		s := sessions[0]
		start := time.Now()
		rdsRevokeConfirmed(t, a, s.SID)
		if !rdsEventually(time.Second, func() bool { return b.Revoked(s.SID, time.Now()) }) {
			t.Fatal("the revocation did not reach the other store within 1 s")
		}
		t.Logf("revocation reached the other store in %v", time.Since(start))
		for i, ps := range subs {
			m, err := ps.ReceiveTimeout(ctx, time.Second)
			if msg, ok := m.(*redis.Message); err != nil || !ok || !strings.Contains(msg.Payload, `"sid":"`+s.SID+`"`) {
				t.Errorf("node %s: subscriber got %v, %v", cluster.Nodes[i].Addr, m, err)
			}
		}
		if c := rdsStoreOn(t, cfg); !c.Revoked(s.SID, time.Now()) {
			t.Error("a store opened after the logout accepts the session")
		}
	})

}

func TestRedisClusterFailoverDuringTraffic(t *testing.T) {
	cluster := redistest.StartCluster(t)
	cfg := Options{Addrs: cluster.Addrs}
	a, b := rdsStoreOn(t, cfg), rdsStoreOn(t, cfg)
	ctx := context.Background()
	// The primary of the revocation list: it also carries the
	// subscriptions of both stores.
	victim := cluster.PrimaryFor(a.revokedKey)
	before := session.NewID()
	rdsRevokeConfirmed(t, a, before)
	// Confirmed means on the primary and on its replica (at once, unless
	// the primary saw no replica in sync and so had none to wait for).
	if !rdsEventually(2*time.Second, func() bool { return cluster.NodesHolding(a.revokedKey) == 2 }) {
		t.Fatalf("a confirmed revocation list is on %d nodes, want 2\n%s", cluster.NodesHolding(a.revokedKey), cluster.Describe(a.revokedKey))
	}

	// Traffic: logins (Put) and reads of uncached sessions, each timed.
	var mu sync.Mutex
	var slowest time.Duration
	var lastFail atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			s := rdsVectorSession()
			err := a.Put(ctx, s, time.Hour)
			if err == nil {
				_, err = b.Get(ctx, s.SID)
			}
			d := time.Since(start)
			mu.Lock()
			slowest = max(slowest, d)
			mu.Unlock()
			if err != nil {
				if !errors.Is(err, session.ErrStoreDown) {
					t.Errorf("during the failover: %v, want session.ErrStoreDown", err)
				}
				lastFail.Store(time.Now().UnixNano())
			}
		}
	}()

	time.Sleep(300 * time.Millisecond)
	victim.Stop() // SIGKILL
	killed := time.Now()
	promoted := cluster.WaitPromoted(victim, 20*time.Second)
	t.Logf("replica promoted %v after the kill", promoted.Sub(killed).Round(time.Millisecond))

	// Everything works again within 10 s of the promotion.
	if !rdsEventually(10*time.Second, func() bool {
		s := rdsVectorSession()
		return a.Put(ctx, s, time.Hour) == nil && b.Revoke(ctx, session.NewID(), time.Now().Add(time.Hour)) == nil
	}) {
		t.Fatal("logins and logouts do not work within 10 s of the promotion")
	}
	t.Logf("working again %v after the promotion", time.Since(promoted).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if slowest > 2*time.Second {
		t.Errorf("a store call took %v during the failover", slowest)
	}
	if f := lastFail.Load(); f > 0 {
		t.Logf("last failed call %v after the promotion", time.Unix(0, f).Sub(promoted).Round(time.Millisecond))
	}

	// The revocation confirmed before the kill survived it, and logouts
	// still reach the other store (its subscription moved to the new
	// primary).
	if c := rdsStoreOn(t, cfg); !c.Revoked(before, time.Now()) {
		// The namespace tells a lost list from a data key made anew.
		t.Errorf("a revocation confirmed before the failover is lost (namespace %s, the first stores' %s)\n%s",
			c.dataKey.NS, a.dataKey.NS, cluster.Describe(c.revokedKey))
	}
	sid := session.NewID()
	var err error
	if !rdsEventually(5*time.Second, func() bool {
		err = a.Revoke(ctx, sid, time.Now().Add(time.Hour))
		return err == nil
	}) {
		t.Fatalf("revoke after the failover: %v", err)
	}
	if !rdsEventually(5*time.Second, func() bool { return b.Revoked(sid, time.Now()) }) {
		t.Error("a logout after the failover does not reach the other store")
	}
}

func TestRedisRevokeWaitsForAReplica(t *testing.T) {
	primary := rdsStart(t)
	replica := rdsStart(t, "--replicaof", "127.0.0.1", primary.Addr[len("127.0.0.1:"):])
	rc := replica.Client()
	defer rc.Close()
	ctx := context.Background()
	pc := primary.Client()
	defer pc.Close()
	// In sync as the primary sees it (state=online), not only as the
	// replica does: until then the store rightly has no replica to wait for.
	if !rdsEventually(10*time.Second, func() bool {
		info, _ := rc.Info(ctx, "replication").Result()
		pinfo, _ := pc.Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up") && strings.Contains(pinfo, "state=online")
	}) {
		t.Fatal("the replica does not sync")
	}
	rdsSetACL(t, primary)
	a := rdsStore(t, &rdsServer{URL: "redis://wechat_auth:" + rdsACLPassword + "@" + primary.Addr}, rdsKeyA)

	sid := session.NewID()
	rdsRevokeConfirmed(t, a, sid)
	if _, err := rc.ZScore(ctx, a.revokedKey, sid).Result(); err != nil {
		t.Errorf("a revocation confirmed to the client is not on the replica yet: %v", err)
	}

	// A replica that does not confirm: the logout cannot be made safe.
	replica.Pause()
	defer replica.Resume()
	lagging := session.NewID()
	start := time.Now()
	err := a.Revoke(ctx, lagging, time.Now().Add(time.Hour))
	if d := time.Since(start); d > time.Second {
		t.Errorf("Revoke took %v with the replica hung", d)
	}
	if !errors.Is(err, session.ErrStoreDown) {
		t.Errorf("Revoke with the replica hung: %v, want session.ErrStoreDown", err)
	}
	if !a.Revoked(lagging, time.Now()) {
		t.Error("the revocation is not honoured here")
	}
	replica.Resume()
	if !rdsEventually(5*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.pending) == 0
	}) {
		t.Error("the revocation stays pending after the replica is back")
	}
	if _, err := rc.ZScore(ctx, a.revokedKey, lagging).Result(); err != nil {
		t.Errorf("the revocation retried is not on the replica: %v", err)
	}
}

func TestRedisRevokeWithoutReplicaDoesNotWait(t *testing.T) {
	a := rdsStore(t, rdsStart(t), rdsKeyA)
	start := time.Now()
	if err := a.Revoke(context.Background(), session.NewID(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= redisWaitTimeout/2 {
		t.Errorf("Revoke on a Redis without replicas took %v", d)
	}
}

func TestRedisClusterNodeGivenAsOneServerIsRefusedAtStart(t *testing.T) {
	cluster := redistest.StartCluster(t)
	metrics.Init(nil)
	block, err := Dial(Options{Addrs: cluster.Addrs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	url, err := ConnFromURL("redis://" + cluster.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range []*Conn{block, url} {
		if _, err := New(conn, keyring.New(rdsKeyA), 0, zap.NewNop()); !errors.Is(err, errClusterNode) {
			t.Errorf("a Cluster node as a single server: %v, want errClusterNode", err)
		}
	}
	// With cluster, one node is enough to find the others.
	st := rdsStoreOn(t, Options{Addrs: cluster.Addrs[:1], Cluster: true})
	var sessions []*session.Session
	for range 10 {
		s := rdsVectorSession()
		if err := st.Put(context.Background(), s, time.Hour); err != nil {
			t.Fatalf("Put through one Cluster endpoint: %v", err)
		}
		sessions = append(sessions, s)
	}
	other := rdsStoreOn(t, Options{Addrs: cluster.Addrs})
	for _, s := range sessions {
		rdsWantDecrypts(t, other, s)
	}
}

// rdsSentinelAsACLUsers starts a primary, its replica and three
// Sentinels that know the documented ACL users, and returns the options
// that reach them as those users; first lists addresses before the
// Sentinels'.
func rdsSentinelAsACLUsers(t *testing.T, first ...string) (*redistest.Sentinel, Options) {
	t.Helper()
	sen := redistest.StartSentinel(t)
	rdsSetACL(t, sen.Primary)
	rdsSetACL(t, sen.Replica)
	for _, s := range sen.Sentinels {
		rdsSetUser(t, s, rdsSentinelACL)
	}
	return sen, Options{
		Addrs: append(first, sen.Addrs...), MasterName: redistest.MasterName,
		Username: "wechat_auth", Password: rdsACLPassword,
		SentinelUsername: "wechat_auth", SentinelPassword: rdsACLPassword,
	}
}

func TestRedisSentinelStoreFailsFastWithHungSentinelsAndFollowsThePromotion(t *testing.T) {
	sen, cfg := rdsSentinelAsACLUsers(t)
	a, b := rdsStoreOn(t, cfg), rdsStoreOn(t, cfg)
	ctx := context.Background()
	before := rdsVectorSession()
	if err := a.Put(ctx, before, time.Hour); err != nil {
		t.Fatal(err)
	}
	revoked := session.NewID()
	rdsRevokeConfirmed(t, a, revoked)

	// No primary, and Sentinels that accept connections but never answer:
	// every call needing Redis still gives up within 2 s.
	for _, s := range sen.Sentinels {
		s.Pause()
		defer s.Resume()
	}
	sen.Primary.Stop()
	for name, call := range map[string]func() error{
		"Put":    func() error { return a.Put(ctx, rdsVectorSession(), time.Hour) },
		"Get":    func() error { _, err := b.Get(ctx, session.NewID()); return err },
		"Revoke": func() error { return a.Revoke(ctx, session.NewID(), time.Now().Add(time.Hour)) },
	} {
		start := time.Now()
		err := call()
		d := time.Since(start)
		t.Logf("%s gave up after %v", name, d.Round(time.Millisecond))
		if d > 2*time.Second {
			t.Errorf("%s took %v with no primary and hung Sentinels", name, d)
		}
		if !errors.Is(err, session.ErrStoreDown) {
			t.Errorf("%s: %v, want session.ErrStoreDown", name, err)
		}
	}

	for _, s := range sen.Sentinels {
		s.Resume()
	}
	promoted := sen.WaitPromoted(30 * time.Second)
	if !rdsEventually(10*time.Second, func() bool { return a.Put(ctx, rdsVectorSession(), time.Hour) == nil }) {
		t.Fatal("logins do not work within 10 s of the promotion")
	}
	t.Logf("working again %v after the promotion", time.Since(promoted).Round(time.Millisecond))
	// b has not used Redis since the kill; it too must follow within 10 s.
	if !rdsEventually(10*time.Second-time.Since(promoted), func() bool { _, err := b.Get(ctx, before.SID); return err == nil }) {
		t.Fatal("the other store does not read sessions within 10 s of the promotion")
	}
	rdsWantDecrypts(t, b, before)
	if c := rdsStoreOn(t, cfg); !c.Revoked(revoked, time.Now()) {
		t.Error("a revocation confirmed before the failover is lost")
	}
	// b's subscription followed the primary too.
	after := session.NewID()
	rdsRevokeConfirmed(t, a, after)
	if !rdsEventually(5*time.Second, func() bool { return b.Revoked(after, time.Now()) }) {
		t.Error("a logout after the failover does not reach the other store")
	}
}

// TestRedisSentinelGracefulFailoverMovesTheSubscription: after a
// SENTINEL FAILOVER the old primary lives on as a replica and keeps the
// subscribers it had; a logout on one store still reaches the other
// within a second of the promotion, not when the old primary drops them.
func TestRedisSentinelGracefulFailoverMovesTheSubscription(t *testing.T) {
	// Listed first, a Sentinel that takes connections and never answers
	// (a stopped process): the others still tell where the primary is.
	hung := redistest.Start(t)
	hung.Pause()
	defer hung.Resume()
	sen, cfg := rdsSentinelAsACLUsers(t, hung.Addr)
	a, b := rdsStoreOn(t, cfg), rdsStoreOn(t, cfg)
	before := session.NewID()
	rdsRevokeConfirmed(t, a, before)
	if !rdsEventually(time.Second, func() bool { return b.Revoked(before, time.Now()) }) {
		t.Fatal("a logout before the failover does not reach the other store")
	}
	c := sen.Sentinels[0].Client()
	defer c.Close()
	if err := c.Do(context.Background(), "SENTINEL", "FAILOVER", redistest.MasterName).Err(); err != nil {
		t.Fatal(err)
	}
	promoted := sen.WaitPromoted(30 * time.Second)
	// Logins and logouts work again on a; then, from then on, a logout
	// reaches b within a second.
	if !rdsEventually(10*time.Second, func() bool { return a.Put(context.Background(), rdsVectorSession(), time.Hour) == nil }) {
		t.Fatal("logins do not work within 10 s of the promotion")
	}
	time.Sleep(time.Second) // the subscription's own second to follow
	after := session.NewID()
	sent := time.Now()
	rdsRevokeConfirmed(t, a, after)
	if !rdsEventually(time.Second, func() bool { return b.Revoked(after, time.Now()) }) {
		t.Fatalf("a logout %v after the promotion did not reach the other store within a second", sent.Sub(promoted).Round(time.Millisecond))
	}
}
