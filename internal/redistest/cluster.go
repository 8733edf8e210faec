package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of StartCluster's nodes:
// a primary that stops answering is replaced by its replica a little
// after this.
const ClusterNodeTimeout = time.Second

// Cluster is a Redis Cluster of three primaries with one replica each,
// started by a test.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
	// Addrs are the host:port of every node, primaries and replicas.
	Addrs []string

	counters map[*Server]*redis.Client // CommandCount's connections
}

// StartCluster starts six redis-servers in cluster mode, without
// persistence, and joins them with redis-cli --cluster create
// --cluster-replicas 1. It returns when every node sees all 16384 slots
// served.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := binary(t, "redis-server")
	cli := binary(t, "redis-cli")
	c := &Cluster{t: t, counters: make(map[*Server]*redis.Client)}
	t.Cleanup(func() {
		for _, rc := range c.counters {
			rc.Close()
		}
	})
	for range 6 {
		dir := t.TempDir()
		s := start(t, func(port int) *Server {
			// Its own free port: the default, port+10000, may be past 65535
			// or taken.
			bus := FreePort(t)
			for bus == port {
				bus = FreePort(t)
			}
			return plain(port, filepath.Join(dir, "redis.log"), []string{bin,
				"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir,
				"--logfile", filepath.Join(dir, "redis.log"),
				"--repl-diskless-sync-delay", "0",
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout / time.Millisecond)),
				"--cluster-port", strconv.Itoa(bus),
			})
		})
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(30 * time.Second)
	return c
}

// WaitHealthy waits until every running node reports cluster_state:ok and
// knows every slot's primary, and every replica is in sync (a replica that
// never synced cannot take over), and fails the test after within.
func (c *Cluster) WaitHealthy(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for !c.healthy() {
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster is not healthy after %v", within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) healthy() bool {
	ctx := context.Background()
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		rc := n.Client()
		info, err := rc.ClusterInfo(ctx).Result()
		repl, err2 := rc.Info(ctx, "replication").Result()
		rc.Close()
		if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return false
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return false
		}
	}
	return true
}

// Primaries returns the nodes that serve slots now, as the first running
// node sees it.
func (c *Cluster) Primaries() []*Server {
	c.t.Helper()
	var out []*Server
	for _, line := range c.nodesView() {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
			continue
		}
		if s := c.byAddr(f[1]); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// NodesHolding is the number of running nodes, primaries and replicas,
// that hold key.
func (c *Cluster) NodesHolding(key string) int {
	c.t.Helper()
	n := 0
	for _, node := range c.Nodes {
		if node.cmd == nil {
			continue
		}
		has, err := node.holds(key)
		if err != nil && !strings.HasPrefix(err.Error(), "MOVED ") {
			c.t.Fatal(err)
		}
		if has {
			n++
		}
	}
	return n
}

// holds reports whether the node has key, a replica included (READONLY).
// A node that does not serve key's slot answers MOVED.
func (s *Server) holds(key string) (bool, error) {
	rc := s.Client()
	defer rc.Close()
	ctx := context.Background()
	rc.Do(ctx, "READONLY")
	n, err := rc.Exists(ctx, key).Result()
	return n > 0, err
}

// PrimariesHolding is the number of primaries that hold a key matching
// pattern (KEYS pattern).
func (c *Cluster) PrimariesHolding(pattern string) int {
	c.t.Helper()
	n := 0
	for _, p := range c.Primaries() {
		rc := p.Client()
		keys, err := rc.Keys(context.Background(), pattern).Result()
		rc.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		if len(keys) > 0 {
			n++
		}
	}
	return n
}

// PrimaryFor returns the node that serves key now.
func (c *Cluster) PrimaryFor(key string) *Server {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		rc := n.Client()
		defer rc.Close()
		slot, err := rc.ClusterKeySlot(context.Background(), key).Result()
		if err != nil {
			c.t.Fatal(err)
		}
		for _, line := range c.nodesView() {
			f := strings.Fields(line)
			if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			for _, r := range f[8:] {
				lo, hi, _ := strings.Cut(r, "-")
				a, err1 := strconv.Atoi(lo)
				b, err2 := strconv.Atoi(hi)
				if err2 != nil {
					b = a
				}
				if err1 == nil && int64(a) <= slot && slot <= int64(b) {
					return c.byAddr(f[1])
				}
			}
		}
		break
	}
	c.t.Fatalf("no primary serves %q", key)
	return nil
}

// nodesView is CLUSTER NODES of the first running node, one line a node.
func (c *Cluster) nodesView() []string {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		rc := n.Client()
		out, err := rc.ClusterNodes(context.Background()).Result()
		rc.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(out), "\n")
	}
	c.t.Fatal("no cluster node is running")
	return nil
}

// byAddr finds the node whose address CLUSTER NODES shows as
// ip:port@busport.
func (c *Cluster) byAddr(field string) *Server {
	addr, _, _ := strings.Cut(field, "@")
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// WaitPromoted waits until another node serves the slots of dead (which
// the test has stopped), and returns when it saw that.
func (c *Cluster) WaitPromoted(dead *Server, within time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		promoted := true
		for _, p := range c.Primaries() {
			if p == dead {
				promoted = false
			}
		}
		if promoted && c.healthy() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no replica took over from %s within %v", dead.Addr, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CommandCount is the number of commands all running nodes have run,
// less the INFO calls that count them. It keeps one connection a node, so
// that its own connection handshakes count only once.
func (c *Cluster) CommandCount() int {
	c.t.Helper()
	total := 0
	for _, n := range c.CommandStats() {
		total += n
	}
	return total
}

// CommandStats is how often each command ran, over every node that runs.
func (c *Cluster) CommandStats() map[string]int {
	c.t.Helper()
	all := make(map[string]int)
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		rc := c.counters[n]
		if rc == nil {
			rc = n.Client()
			c.counters[n] = rc
		}
		for name, k := range CommandStats(c.t, rc) {
			all[name] += k
		}
	}
	return all
}

// Describe is what each node holds and sees, for a failed test: its
// address, whether it still runs, its role, whether it has key (read with
// READONLY, so a replica answers too), its CLUSTER NODES view, and the
// last lines of its log.
func (c *Cluster) Describe(key string) string {
	ctx := context.Background()
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "node %s", n.Addr)
		if n.cmd == nil {
			fmt.Fprintf(&b, " (stopped)\n%s\n", n.logTail(20))
			continue
		}
		rc := n.Client()
		repl, _ := rc.Info(ctx, "replication").Result()
		role := "role unknown"
		if i := strings.Index(repl, "role:"); i >= 0 {
			role, _, _ = strings.Cut(repl[i:], "\r")
		}
		view, _ := rc.ClusterNodes(ctx).Result()
		rc.Close()
		has, err := n.holds(key)
		fmt.Fprintf(&b, " %s, has %q: %t %v\n%s%s\n", role, key, has, err, view, n.logTail(20))
	}
	return b.String()
}
