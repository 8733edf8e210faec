package redisstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// How long a logout waits for a replica to confirm its revocation (WAIT).
// Below IOTimeout, which bounds every read, WAIT's answer included.
const redisWaitTimeout = 400 * time.Millisecond

// errReplicaLag: the primary took a revocation, but no replica confirmed
// it in time, so a failover now could lose it.
var errReplicaLag = errors.New("no replica confirmed the revocation in time")

// failed has a Cluster client reload its slot map. go-redis reloads it on
// MOVED and every ClusterRefresh only, not when a primary stops
// answering, so without this the keys of a killed primary would stay
// unreachable after its replica took over. Reloads are coalesced by
// go-redis (at most one every 200 ms).
func (r *Store) failed() {
	if c, ok := r.client.(*redis.ClusterClient); ok {
		c.ReloadState(context.Background())
	}
}

// primaryFor returns the client of the primary that holds key: the store's
// own client outside a Cluster (a Sentinel client follows the primary by
// itself).
func (r *Store) primaryFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, errors.New("unexpected Redis client")
}

// onlineReplicas counts the replicas in sync in an INFO replication reply.
func onlineReplicas(info string) int {
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
			n++
		}
	}
	return n
}

// waitReplica waits until a replica has every write made on conn (WAIT 1),
// within redisWaitTimeout and ctx, when the primary has a replica in sync
// (replicas, from INFO replication). A primary with none has nothing to
// wait for: it is the only copy, as it was before any failover setup.
func (r *Store) waitReplica(ctx context.Context, conn *redis.Conn, replicas int) error {
	if replicas == 0 {
		return nil
	}
	wait := redisWaitTimeout
	if dl, ok := ctx.Deadline(); ok {
		// Leave time for the answer to travel back.
		wait = min(wait, time.Until(dl)-50*time.Millisecond)
	}
	if wait < 10*time.Millisecond {
		return errReplicaLag
	}
	n, err := conn.Do(ctx, "WAIT", 1, wait.Milliseconds()).Int64()
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr):
		// Refused (an ACL without WAIT): the logout cannot be made safe
		// this way; do not fail every logout for it.
		r.warnOnce(&r.noWait, "Redis refuses WAIT; logouts do not wait for a replica, and a failover may lose one (grant +wait to the ACL user)", err)
		return nil
	case err != nil:
		return err
	case n < 1:
		return errReplicaLag
	}
	return nil
}

// warnOnce logs msg the first time *flag is set.
func (r *Store) warnOnce(flag *bool, msg string, err error) {
	r.mu.Lock()
	first := !*flag
	*flag = true
	r.mu.Unlock()
	if first {
		r.log.Warn(msg, zap.Error(err))
	}
}

var errClusterNode = errors.New("this Redis is a node of a Redis Cluster, which a single-server client cannot use: list the Cluster's nodes in a store redis block's addrs, or add cluster to the block")

// refuseClusterNode fails when a server given as a single one is a Cluster
// node: keys of the slots other nodes serve would answer MOVED, so most
// logins would fail while some work. It says nothing when INFO is refused.
func refuseClusterNode(ctx context.Context, client redis.UniversalClient, mode string) error {
	if mode != Single {
		return nil
	}
	info, err := client.Info(ctx, "cluster").Result()
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr):
		return nil
	case err != nil:
		return err
	case strings.Contains(info, "cluster_enabled:1"):
		return errClusterNode
	}
	return nil
}
