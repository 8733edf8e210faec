package outbox

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// countingStorage counts the writes an Accept makes to Caddy's storage.
type countingStorage struct {
	certmagic.Storage
	writes atomic.Int64
}

func (c *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	c.writes.Add(1)
	return c.Storage.Store(ctx, key, value)
}

// BenchmarkAccept: events delivered at once (the upstream up), with the
// store writes each costs.
func BenchmarkAccept(b *testing.B) {
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		client := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer client.Close()
		stats := srv.Client()
		defer stats.Close()
		benchAccept(b, RedisStore(client, "bench:", nil), func() int64 {
			n := int64(0)
			for cmd, calls := range redistest.CommandStats(b, stats) {
				switch cmd {
				// Redis counts the commands a script runs, not the
				// script: the claim's SET, the done SET, and the
				// outbox's HSET and ZADD were there any.
				case "set", "hset", "zadd", "hincrby":
					n += int64(calls)
				}
			}
			return n
		})
	})
	b.Run("storage", func(b *testing.B) {
		cs := &countingStorage{Storage: &certmagic.FileStorage{Path: b.TempDir()}}
		benchAccept(b, StorageStore(cs, "outbox", nil), cs.writes.Load)
	})
}

// benchAccept reports writes/op: writes to the store (Redis: the claim's
// SET and the SET marking the id done; storage: files written).
func benchAccept(b *testing.B, s Store, writes func() int64) {
	up := newUpstream(b)
	o := New(s, Config{})
	ev := up.event("")
	ctx := context.Background()
	before := writes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev.ID = strconv.Itoa(i)
		res, err := o.Accept(ctx, ev)
		if err != nil || res.Status != Delivered {
			b.Fatal(res.Status, err)
		}
	}
	b.StopTimer()
	s.close() // the writes a store makes in the background are done
	b.ReportMetric(float64(writes()-before)/float64(b.N), "writes/op")
}
