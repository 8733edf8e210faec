package redisstore

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// During a Redis outage go-redis reports failed dials; they reach Caddy's
// log (where the operator's log configuration applies), not stderr.
func TestGoRedisMessagesGoToCaddysLog(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	redis.SetLogger(redisLogger{log: func() *zap.Logger { return zap.New(core) }})
	t.Cleanup(func() { redis.SetLogger(redisLogger{log: caddy.Log}) })

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("ping to a closed port succeeded")
	}
	for _, e := range logs.All() {
		if e.LoggerName == "go-redis" && strings.Contains(e.Message, "dial") {
			return
		}
	}
	t.Fatalf("no go-redis dial failure in Caddy's log; got %v", logs.All())
}
