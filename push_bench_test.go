package wechatauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	benchPushToken = "benchPushToken"
	benchPushKey   = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
	benchPushApp   = "wxbench000000001"
)

// pushUpstream answers every request 200 with an empty body, counting
// them.
func pushBenchUpstream(tb testing.TB) (string, *atomic.Int64) {
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return "127.0.0.1:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), &n
}

func freeAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkPush measures, in one Caddy, pushes per second through
// wechat_push in safe mode (verify, decrypt, deduplicate, deliver to the
// upstream and answer) against a bare reverse_proxy forwarding the same
// bodies to the same upstream. Each push is a new event (its own MsgId),
// so every one is delivered. Compare the two ns/op: the issue asks the
// push path to reach at least half the proxy's rate.
func BenchmarkPush(b *testing.B) {
	upstream, _ := pushBenchUpstream(b)
	pushAddr, proxyAddr := freeAddr(b), freeAddr(b)
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true},
		"storage": map[string]any{"module": "file_system", "root": b.TempDir()},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
			"push": map[string]any{"listen": []string{pushAddr}, "routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "wechat_push", "app_id": benchPushApp, "token": benchPushToken, "aes_key": benchPushKey,
				"to": "http://" + upstream + "/push",
			}}}}},
			"proxy": map[string]any{"listen": []string{proxyAddr}, "routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}},
			}}}}},
		}}},
	}
	raw, _ := json.Marshal(cfg)
	if err := caddy.Load(raw, true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { caddy.Stop() })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	p := wechattest.Push{Token: benchPushToken, AESKey: benchPushKey, AppID: benchPushApp, Safe: true}

	type built struct {
		url  string
		body []byte
	}
	build := func(n int) []built {
		out := make([]built, n)
		for i := range out {
			pr, err := p.Build(p.Text("oBench000000000000000000001", "hello from the benchmark"))
			if err != nil {
				b.Fatal(err)
			}
			out[i] = built{"?" + pr.Query.Encode(), pr.Body}
		}
		return out
	}
	run := func(b *testing.B, addr string) {
		pushes := build(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for _, pu := range pushes {
			resp, err := client.Post("http://"+addr+"/wechat/push"+pu.url, "text/xml", bytes.NewReader(pu.body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("wechat_push", func(b *testing.B) { run(b, pushAddr) })
	b.Run("reverse_proxy", func(b *testing.B) { run(b, proxyAddr) })
}

// countingStorage is Caddy's storage, counting writes.
type countingStorage struct {
	certmagic.Storage
	writes atomic.Int64
}

func (s *countingStorage) Store(ctx context.Context, key string, value []byte) error {
	s.writes.Add(1)
	return s.Storage.Store(ctx, key, value)
}

// TestFirstDeliveryWritesOnlyTheDedupRecord: a push the upstream takes at
// once costs the store only its deduplication record: nothing is written
// to the outbox (with the memory store, one file of id records in Caddy's
// storage, written after WeChat's answer, in a batch; in Redis one key,
// the id's).
func TestFirstDeliveryWritesOnlyTheDedupRecord(t *testing.T) {
	upstream, got := pushBenchUpstream(t)
	to := "http://" + upstream + "/push"
	ctx := benchContext(t)

	t.Run("memory store", func(t *testing.T) {
		d, err := openDelivery(ctx, deliverySettings{Module: "wechat_push", Kind: "push_test_mem", To: to})
		if err != nil {
			t.Fatal(err)
		}
		cs := &countingStorage{Storage: ctx.Storage()}
		d.storage = cs
		defer d.close() // after a failure; a second close does nothing
		res, err := d.accept(context.Background(), "evt-1", "", http.Header{"X-Wx-Event-Id": {"evt-1"}}, []byte("<xml/>"))
		if err != nil || res.Status.String() != "delivered" {
			t.Fatalf("accept: %v %v", res.Status, err)
		}
		if n := cs.writes.Load(); n != 0 {
			t.Fatalf("WeChat's answer waited for %d files written to Caddy's storage, want none", n)
		}
		if err := d.close(); err != nil { // writes the id records still queued
			t.Fatal(err)
		}
		if n := cs.writes.Load(); n != 1 {
			t.Fatalf("a first delivery that succeeded wrote %d files to Caddy's storage, want one, the id's record", n)
		}
		if names, _ := ctx.Storage().List(context.Background(), "wechat_auth/outbox/push_test_mem", true); len(names) != 0 {
			t.Fatalf("the outbox holds %q after a delivered push", names)
		}
	})

	t.Run("redis store", func(t *testing.T) {
		rds := redistest.Start(t)
		d, err := openDelivery(ctx, deliverySettings{Module: "wechat_push", Kind: "push", Store: rds.URL, To: to})
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		before := got.Load()
		res, err := d.accept(context.Background(), "evt-2", "", http.Header{"X-Wx-Event-Id": {"evt-2"}}, []byte("<xml/>"))
		if err != nil || res.Status.String() != "delivered" || got.Load() != before+1 {
			t.Fatalf("accept: %v %v", res.Status, err)
		}
		c := rds.Client()
		keys, err := c.Keys(context.Background(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || !strings.HasSuffix(keys[0], ":id:push:evt-2") {
			t.Fatalf("Redis holds %q after one delivered push; want only the id's record", keys)
		}
		if v, _ := c.Get(context.Background(), keys[0]).Result(); v != "d" {
			t.Fatalf("the id's record is %q, want delivered", v)
		}
		if ttl := c.PTTL(context.Background(), keys[0]).Val(); ttl < 23*time.Hour {
			t.Fatalf("the id is remembered for %v, want 24 h", ttl)
		}
	})
}

// TestDeliveryBorrowsTheSessionStoresRedisClient: with a wechat_auth
// keeping its sessions in the same Redis, the outbox uses that store's
// client (no second connection pool) and holds the store while it does.
func TestDeliveryBorrowsTheSessionStoresRedisClient(t *testing.T) {
	srv := redistest.Start(t)
	h := &Handler{Sandbox: true, Store: srv.URL, SigningKey: testSigningKey}
	if err := provision(t, h); err != nil {
		t.Fatal(err)
	}
	d, err := openDelivery(benchContext(t), deliverySettings{Module: "wechat_push", Kind: "push_borrow", Store: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.own || p.borrowed != h.storeKey || p.client != h.store.(*redisstore.Store).Client() {
		t.Fatalf("the outbox made its own Redis client (own %v, borrowed %q) beside the session store's", p.own, p.borrowed)
	}
	// The handler goes; the outbox still holds the store and its client.
	key := p.borrowed
	h.Cleanup()
	if _, ok := stores.References(key); !ok {
		t.Fatal("the session store was destroyed while the outbox uses its client")
	}
	if err := p.client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the borrowed client no longer works: %v", err)
	}
	d.close()
	if _, ok := stores.References(key); ok {
		t.Fatal("the outbox did not give the session store back")
	}
}
