package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterName is the name StartSentinel's Sentinels monitor the primary as.
const MasterName = "wxmaster"

// SentinelDownAfter is how long StartSentinel's Sentinels wait for a
// silent primary before they start a failover.
const SentinelDownAfter = time.Second

// Sentinel is a primary with one replica, watched by three Sentinels
// (quorum 2), started by a test.
type Sentinel struct {
	t                testing.TB
	Primary, Replica *Server
	Sentinels        []*Server
	// Addrs are the host:port of the three Sentinels.
	Addrs []string
}

// StartSentinel starts a primary, a replica of it and three Sentinels, all
// without persistence, and returns when every Sentinel knows the replica
// and the two other Sentinels (before that a failover could not be
// agreed on).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := binary(t, "redis-server")
	s := &Sentinel{t: t}
	s.Primary = Start(t)
	s.Replica = Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.port))
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		logfile := filepath.Join(dir, "sentinel.log")
		sn := start(t, func(port int) *Server {
			text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
				"sentinel monitor %s 127.0.0.1 %d 2\n"+
				"sentinel down-after-milliseconds %s %d\n"+
				"sentinel failover-timeout %s 10000\n",
				port, dir, logfile,
				MasterName, s.Primary.port, MasterName, SentinelDownAfter/time.Millisecond, MasterName)
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			return plain(port, logfile, []string{bin, conf, "--sentinel"})
		})
		s.Sentinels = append(s.Sentinels, sn)
		s.Addrs = append(s.Addrs, sn.Addr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !s.ready() {
		if time.Now().After(deadline) {
			t.Fatal("the Sentinels do not know each other and the replica after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// ready reports whether every Sentinel sees the primary with its replica
// and the two other Sentinels, and the replica is in sync.
func (s *Sentinel) ready() bool {
	ctx := context.Background()
	rc := s.Replica.Client()
	info, err := rc.Info(ctx, "replication").Result()
	rc.Close()
	if err != nil || !strings.Contains(info, "master_link_status:up") {
		return false
	}
	for _, sn := range s.Sentinels {
		c := sn.Client()
		m, err := c.Do(ctx, "SENTINEL", "MASTER", MasterName).Result()
		c.Close()
		if err != nil {
			return false
		}
		fields := sentinelFields(m)
		if fields["num-other-sentinels"] != "2" || fields["num-slaves"] != "1" {
			return false
		}
	}
	return true
}

// sentinelFields reads a SENTINEL MASTER reply (a flat list in RESP2, a
// map in RESP3).
func sentinelFields(v any) map[string]string {
	out := make(map[string]string)
	switch m := v.(type) {
	case []any:
		for i := 0; i+1 < len(m); i += 2 {
			out[fmt.Sprint(m[i])] = fmt.Sprint(m[i+1])
		}
	case map[any]any:
		for k, v := range m {
			out[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	}
	return out
}

// MasterAddr is the primary's address as the first running Sentinel
// tells it.
func (s *Sentinel) MasterAddr() string {
	s.t.Helper()
	for _, sn := range s.Sentinels {
		c := sn.Client()
		addr, err := c.Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
		c.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1]
		}
	}
	s.t.Fatal("no Sentinel names the primary")
	return ""
}

// allName reports whether every Sentinel names addr as the primary.
func (s *Sentinel) allName(addr string) bool {
	for _, sn := range s.Sentinels {
		c := sn.Client()
		got, err := c.Do(context.Background(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
		c.Close()
		if err != nil || len(got) != 2 || got[0]+":"+got[1] != addr {
			return false
		}
	}
	return true
}

// WaitPromoted waits until every Sentinel names the replica as the
// primary and it answers as one, and returns when it saw that. Until all
// agree, a client made meanwhile may be told the old primary by one that
// has not heard yet.
func (s *Sentinel) WaitPromoted(within time.Duration) time.Time {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if s.allName(s.Replica.Addr) {
			rc := s.Replica.Client()
			info, err := rc.Info(context.Background(), "replication").Result()
			rc.Close()
			if err == nil && strings.Contains(info, "role:master") {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the Sentinels did not promote the replica within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
