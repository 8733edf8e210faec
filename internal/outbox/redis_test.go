package outbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// An instance that queued an event and died before its workers ran: the
// other instance delivers it.
func TestAnotherInstanceDeliversWhatAKilledOneQueued(t *testing.T) {
	b := redisBackend(t)
	up := newUpstream(t)
	up.down.Store(true)
	one := New(b.store(t), testConfig(nil, nil)) // never started: killed
	accept(t, one, up.event("m1"), Queued)
	two := start(t, New(b.store(t), testConfig(nil, nil)))
	up.down.Store(false)
	up.waitCount(t, "m1", 1, 2*time.Second)
	accept(t, two, up.event("m1"), Duplicate)
}

// A worker that claimed an event and died holds it for its lease only.
func TestAnEventClaimedByADeadWorkerIsDeliveredAfterItsLease(t *testing.T) {
	b := redisBackend(t)
	up := newUpstream(t)
	up.down.Store(true)
	cfg := testConfig(nil, nil)
	cfg.Backoff = func(int) time.Duration { return 0 }
	dead := b.store(t)
	accept(t, New(dead, cfg), up.event("m1"), Queued)
	up.down.Store(false)
	held, err := dead.due(context.Background(), 10, cfg.Lease)
	if err != nil || len(held) != 1 {
		t.Fatalf("the first instance claims %d events (%v)", len(held), err)
	}
	claimedAt := time.Now()
	start(t, New(b.store(t), cfg))
	up.waitCount(t, "m1", 1, cfg.Lease+2*time.Second)
	if d := time.Since(claimedAt); d < cfg.Lease-100*time.Millisecond {
		t.Errorf("delivered %v after another instance claimed it, inside its lease %v", d, cfg.Lease)
	}
}

// WeChat's retry reaches instance 2 while instance 1 still delivers the
// event synchronously: busy (WeChat retries later), then duplicate.
func TestRetryToAnotherInstanceDuringADeliveryIsBusyThenDuplicate(t *testing.T) {
	b := redisBackend(t)
	up := newUpstream(t)
	obs := newCounter()
	one := start(t, New(b.store(t), testConfig(obs, nil)))
	two := start(t, New(b.store(t), testConfig(obs, nil)))
	up.block = make(chan struct{})
	first := make(chan Result)
	go func() {
		res, _ := one.Accept(context.Background(), up.event("m1"))
		first <- res
	}()
	<-up.got
	accept(t, two, up.event("m1"), Busy)
	close(up.block)
	if res := <-first; res.Status != Delivered {
		t.Fatalf("instance 1: %v", res.Status)
	}
	accept(t, two, up.event("m1"), Duplicate)
	time.Sleep(200 * time.Millisecond)
	if up.count("m1") != 1 {
		t.Errorf("delivered %d times", up.count("m1"))
	}
	if obs.get("push/busy") != 1 || obs.get("push/duplicate") != 1 {
		t.Errorf("results %v", obs.results)
	}
}

// Instance 1 died during its synchronous delivery: once its lease is over,
// WeChat's retry on instance 2 takes the event over.
func TestRetryAfterAnExpiredLeaseTakesTheEventOver(t *testing.T) {
	b := redisBackend(t)
	up := newUpstream(t)
	cfg := testConfig(nil, nil)
	dead := b.store(t)
	if st, _, err := dead.claim(context.Background(), eventKey("push", "m1"), cfg.Lease, time.Hour); err != nil || st != claimNew {
		t.Fatal(st, err)
	}
	two := New(b.store(t), cfg)
	accept(t, two, up.event("m1"), Busy)
	time.Sleep(cfg.Lease)
	accept(t, two, up.event("m1"), Delivered)
	accept(t, two, up.event("m1"), Duplicate)
}

// A queued event survives a Sentinel failover: it waited for the replica
// before WeChat was answered.
func TestQueuedEventSurvivesASentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	sn := redistest.StartSentinel(t)
	client := func() redis.UniversalClient {
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: redistest.MasterName, SentinelAddrs: sn.Addrs,
			DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
		})
		t.Cleanup(func() { c.Close() })
		return c
	}
	up := newUpstream(t)
	up.down.Store(true)
	accept(t, New(RedisStore(client(), testPrefix, nil), testConfig(nil, nil)), up.event("m1"), Queued)
	pc := sn.Primary.Client()
	if n := redistest.CommandStats(t, pc)["wait"]; n != 1 {
		t.Errorf("the queued event waited for a replica %d times, want once (WAIT 1)", n)
	}
	pc.Close()
	sn.Primary.Stop()
	sn.WaitPromoted(30 * time.Second)
	up.down.Store(false)
	start(t, New(RedisStore(client(), testPrefix, nil), testConfig(nil, nil)))
	up.waitCount(t, "m1", 1, 15*time.Second)
}

// In a Redis Cluster the scripts touching several keys work (one hash
// tag), and a queued event waits for its primary's replica.
func TestRedisClusterQueuesAndDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster takes seconds to start")
	}
	cl := redistest.StartCluster(t)
	for _, n := range cl.Nodes {
		n.SetUser(t, redistest.ACL)
	}
	client := func() redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs, Username: redistest.ACLUser, Password: redistest.ACLPassword})
		t.Cleanup(func() { c.Close() })
		return c
	}
	// A fresh cluster's replicas may still be syncing.
	waitReplicaOnline(t, cl.PrimaryFor(testPrefix+"{outbox}:due"))
	up := newUpstream(t)
	up.down.Store(true)
	one := New(RedisStore(client(), testPrefix, nil), testConfig(nil, nil))
	accept(t, one, up.event("m1"), Queued)
	if n := cl.CommandStats()["wait"]; n != 1 {
		t.Errorf("WAIT ran %d times, want once", n)
	}
	accept(t, one, up.event("m1"), Duplicate)
	up.down.Store(false)
	two := start(t, New(RedisStore(client(), testPrefix, nil), testConfig(nil, nil)))
	up.waitCount(t, "m1", 1, 3*time.Second)
	accept(t, two, up.event("m2"), Delivered)
}

// A primary whose replica does not confirm a queued event: WeChat is not
// told it is queued, nor is its retry answered as a duplicate, until a
// replica has it. A failover in between would lose an event WeChat
// believes delivered.
func TestAQueuedEventIsAcknowledgedOnlyOnceAReplicaHasIt(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", primary.Addr[strings.LastIndexByte(primary.Addr, ':')+1:])
	waitReplicaOnline(t, primary)
	primary.SetUser(t, redistest.ACL)
	client := redis.NewClient(&redis.Options{Addr: primary.Addr, Username: redistest.ACLUser, Password: redistest.ACLPassword})
	defer client.Close()
	obs := newCounter()
	o := New(RedisStore(client, testPrefix, nil), testConfig(obs, nil))
	up := newUpstream(t)
	up.down.Store(true)

	replica.Pause()
	defer replica.Resume()
	accept(t, o, up.event("m1"), Busy)
	accept(t, o, up.event("m1"), Busy) // WeChat's retry, the replica still hung
	if n := obs.get("push/queued"); n != 1 {
		t.Errorf("queued counted %d times, want 1: the primary holds the event", n)
	}

	replica.Resume()
	rc := replica.Client()
	defer rc.Close()
	// WeChat's next retry, once the replica has caught up.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := o.Accept(context.Background(), up.event("m1"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == Duplicate {
			break
		}
		if res.Status != Busy || time.Now().After(deadline) {
			t.Fatalf("a retry with the replica back: %v, want duplicate within 5 s", res.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, _ := rc.HLen(context.Background(), testPrefix+"{outbox}:events").Result(); n != 1 {
		t.Errorf("the replica holds %d queued events once the retry is acknowledged, want 1", n)
	}
	up.down.Store(false)
	start(t, o)
	up.waitCount(t, "m1", 1, 3*time.Second)
}

// waitReplicaOnline waits until primary counts a replica in sync, and
// the replica has acknowledged a write: a replica just online may not
// acknowledge for up to a second (its first REPLCONF ACK), longer than a
// queued event waits. The statistics are reset after, so a test counts
// only its own commands.
func waitReplicaOnline(t *testing.T, primary *redistest.Server) {
	t.Helper()
	waitReplicas(t, primary, true, "the primary has no replica in sync after 10 s")
	pc := primary.Client()
	defer pc.Close()
	ctx := context.Background()
	// WAIT covers the writes of its own connection: one write first (in
	// the outbox's slot, for a Cluster), or it answers at once whatever
	// the replica does.
	conn := pc.Conn()
	defer conn.Close()
	if err := conn.Set(ctx, testPrefix+"{outbox}:warm-up", "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Do(ctx, "WAIT", 1, 5000).Int64(); err != nil || n < 1 {
		t.Fatalf("the replica acknowledges no write within 5 s: %d %v", n, err)
	}
	if err := pc.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// waitReplicas waits until primary counts a replica in sync (online) or
// none, failing with msg after 10 s.
func waitReplicas(t *testing.T, primary *redistest.Server, online bool, msg string) {
	t.Helper()
	pc := primary.Client()
	defer pc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for (onlineReplicas(pc.Info(context.Background(), "replication").Val()) > 0) != online {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A primary that loses its replica (here stopped; dropped after
// repl-timeout alike) has events acknowledged with one copy: Redis cannot
// say whether the replica will come back. The operator is told, once per
// loss, in the log.
func TestLosingTheReplicaIsLoggedOnce(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", primary.Addr[strings.LastIndexByte(primary.Addr, ':')+1:])
	waitReplicaOnline(t, primary)
	client := primary.Client()
	defer client.Close()
	log, logs := observedLogger()
	o := New(RedisStore(client, testPrefix, log), testConfig(nil, log))
	up := newUpstream(t)
	up.down.Store(true)
	lost := func() int { return logs.FilterMessageSnippet("no replica in sync any more").Len() }

	accept(t, o, up.event("m1"), Queued)
	if n := lost(); n != 0 {
		t.Fatalf("%d warnings with the replica in sync", n)
	}
	replica.Stop()
	waitReplicas(t, primary, false, "the primary still counts the stopped replica after 10 s")
	accept(t, o, up.event("m2"), Queued)
	accept(t, o, up.event("m3"), Queued)
	if n := lost(); n != 1 {
		t.Errorf("%d warnings after the replica was lost, want 1", n)
	}
}
