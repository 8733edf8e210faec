package redisstore

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// primaryPoll is how often a subscription over Sentinels asks them which
// server is the primary.
const primaryPoll = 500 * time.Millisecond

// primaryAsker asks the Sentinels, one after the other, for the address of
// the primary. go-redis moves its pool to a new primary by itself, but not
// a subscription: after a failover that keeps the old primary running
// (SENTINEL FAILOVER, a maintenance switch), the old one, now a replica,
// keeps its subscribers and, until it drops them seconds later, hears
// nothing published on the new one. Asking lets the subscription move at
// once (watchPrimary).
type primaryAsker struct {
	name string
	opts []*redis.Options // one per Sentinel

	mu      sync.Mutex
	clients []*redis.SentinelClient // made on first use
	closed  bool
}

func newPrimaryAsker(o *redis.UniversalOptions) *primaryAsker {
	p := &primaryAsker{name: o.MasterName}
	for _, addr := range o.Addrs {
		so := &redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: 1, MaxRetries: -1, DisableIdentity: true,
		}
		so.MaintNotificationsConfig = noMaintNotifications()
		p.opts = append(p.opts, so)
	}
	return p
}

// primary returns the primary's address as the first Sentinel that
// answers gives it.
func (p *primaryAsker) primary(ctx context.Context) (string, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", redis.ErrClosed
	}
	if p.clients == nil {
		for _, o := range p.opts {
			p.clients = append(p.clients, redis.NewSentinelClient(o))
		}
	}
	clients := p.clients
	p.mu.Unlock()
	var err error
	for _, c := range clients {
		var addr []string
		addr, err = c.GetMasterAddrByName(ctx, p.name).Result()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
	}
	return "", err
}

func (p *primaryAsker) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.clients {
		c.Close()
	}
}
