package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// primaryPoll is how often a subscription over Sentinels asks them
	// which server is the primary.
	primaryPoll = 500 * time.Millisecond
	// primaryAsk bounds one Sentinel's answer; they are asked at once.
	primaryAsk = 300 * time.Millisecond
	// primaryMoveGap is the least time between two moves of a
	// subscription, each of which reads the whole revocation list again.
	primaryMoveGap = 2 * time.Second
)

// errNoMajority: the Sentinels that answered do not agree on a primary.
var errNoMajority = errors.New("no majority of the Sentinels names one primary")

// primaryAsker asks the Sentinels where the primary is, and connects a
// subscription to it. go-redis moves its pool to a new primary by itself,
// but not a subscription: after a failover that keeps the old primary
// running (SENTINEL FAILOVER, a maintenance switch), the old one, now a
// replica, keeps its subscribers and, until it drops them seconds later,
// hears nothing published on the new one. A subscription made to the
// address the Sentinels give, and moved when their answer changes
// (watchPrimary), follows at once.
type primaryAsker struct {
	name string
	node redis.UniversalOptions // Redis's own options, for the subscription
	opts []*redis.Options       // one per Sentinel

	mu      sync.Mutex
	clients []*redis.SentinelClient // made on first use
	closed  bool
}

func newPrimaryAsker(o *redis.UniversalOptions) *primaryAsker {
	p := &primaryAsker{name: o.MasterName, node: *o}
	p.node.MasterName = ""
	for _, addr := range o.Addrs {
		so := &redis.Options{
			Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
			DialTimeout: primaryAsk, DialerRetries: 1, ReadTimeout: primaryAsk, WriteTimeout: primaryAsk,
			PoolSize: 1, MaxRetries: -1, DisableIdentity: true,
		}
		so.MaintNotificationsConfig = noMaintNotifications()
		p.opts = append(p.opts, so)
	}
	return p
}

// primary asks every Sentinel at once, each within primaryAsk, and
// returns the address a majority of them give the primary: one Sentinel
// that has not heard of a failover yet, or has lost touch, is outvoted.
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
	type answer struct {
		addr string
		err  error
	}
	answers := make(chan answer, len(clients))
	for _, c := range clients {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, primaryAsk)
			defer cancel()
			addr, err := c.GetMasterAddrByName(ctx, p.name).Result()
			if err == nil && len(addr) != 2 {
				err = errNoMajority
			}
			if err != nil {
				answers <- answer{err: err}
				return
			}
			answers <- answer{addr: net.JoinHostPort(addr[0], addr[1])}
		}()
	}
	votes := make(map[string]int)
	err := errNoMajority
	for range clients {
		a := <-answers
		if a.err != nil {
			err = a.err
			continue
		}
		votes[a.addr]++
	}
	for addr, n := range votes {
		if 2*n > len(clients) {
			return addr, nil
		}
	}
	return "", err
}

// subscriber is a client of the one server at addr, with Redis's own
// options, for a subscription made there.
func (p *primaryAsker) subscriber(addr string) *redis.Client {
	o := p.node
	o.Addrs = []string{addr}
	return redis.NewClient(o.Simple())
}

func (p *primaryAsker) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.clients {
		c.Close()
	}
}
