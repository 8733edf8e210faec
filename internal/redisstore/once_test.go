package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
)

var _ weblogin.OnceStore = (*Store)(nil)

// A web login begun on one instance finishes on another, once: the state
// is put on A and taken on B; a second take, on either, finds nothing.
func TestRedisOnceValueTakenOnceAcrossInstances(t *testing.T) {
	srv := rdsStart(t)
	a, b := rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	if err := a.PutOnce(ctx, "web_state:S1", []byte(`{"appid":"wxa"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.PutOnce(ctx, "web_state:S1", []byte("other"), time.Minute); !errors.Is(err, ErrOnceExists) {
		t.Fatalf("a second put of a live key: %v", err)
	}
	v, ok, err := b.Take(ctx, "web_state:S1")
	if err != nil || !ok || string(v) != `{"appid":"wxa"}` {
		t.Fatalf("take on the other instance: %q %v %v", v, ok, err)
	}
	for _, st := range []*Store{a, b} {
		if _, ok, err := st.Take(ctx, "web_state:S1"); ok || err != nil {
			t.Fatalf("a second take: %v %v", ok, err)
		}
	}

	// Of many concurrent takes of one key, exactly one gets it.
	if err := a.PutOnce(ctx, "web_handoff:T", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func(st *Store) {
			defer wg.Done()
			if _, ok, _ := st.Take(ctx, "web_handoff:T"); ok {
				got.Add(1)
			}
		}([]*Store{a, b}[i%2])
	}
	wg.Wait()
	if got.Load() != 1 {
		t.Fatalf("%d takes got the value", got.Load())
	}

	// An expired value is gone.
	if err := a.PutOnce(ctx, "web_state:S2", []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond)
	if _, ok, _ := b.Take(ctx, "web_state:S2"); ok {
		t.Fatal("an expired value was taken")
	}
}

// rdsOnceKeys counts the one-time values st's deployment holds on the
// servers (the buckets' indexes aside), read with their own clients (the
// store's user may not SCAN).
func rdsOnceKeys(t *testing.T, st *Store, servers []*redistest.Server) int {
	t.Helper()
	n := 0
	for _, srv := range servers {
		c := srv.Client()
		keys, err := c.Keys(context.Background(), st.oncePrefix+"*").Result()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if !strings.Contains(k, ":index:") {
				n++
			}
		}
	}
	return n
}

// rdsWantOnceBounded puts 20 times the bound's worth of one-time values,
// as a flood of web logins begun would: Redis then holds no more than
// the bound, and no put is refused; the newest values are all there.
func rdsWantOnceBounded(t *testing.T, a, b *Store, servers []*redistest.Server) {
	t.Helper()
	ctx := context.Background()
	a.onceMax, b.onceMax = 64, 64
	keys := make([]string, 64*20)
	for i := range keys {
		keys[i] = "web_state:flood" + strconv.Itoa(i)
		if err := []*Store{a, b}[i%2].PutOnce(ctx, keys[i], []byte(`{"return_to":"https://example.com/"}`), time.Minute); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if n := rdsOnceKeys(t, a, servers); n > 64 {
		t.Errorf("Redis holds %d one-time values, want at most 64", n)
	}
	if _, ok, err := b.Take(ctx, keys[0]); ok || err != nil {
		t.Errorf("the oldest value is still there (%v, %v)", ok, err)
	}
	for _, k := range keys[len(keys)-4:] {
		if _, ok, err := b.Take(ctx, k); !ok || err != nil {
			t.Errorf("a value just put is gone (%v, %v)", ok, err)
		}
	}
}

// One-time values are put by requests without any credential (a web
// login begun), so a flood of them keeps Redis at a bound.
func TestRedisOnceValuesAreBounded(t *testing.T) {
	srv := rdsStart(t)
	rdsWantOnceBounded(t, rdsStore(t, srv, rdsKeyA), rdsStore(t, srv, rdsKeyA), []*redistest.Server{srv})
}

// A value an earlier version put, under the key without a bucket, is
// still taken once during a rolling upgrade.
func TestRedisOnceValueOfAnEarlierVersionIsTaken(t *testing.T) {
	srv := rdsStart(t)
	st := rdsStore(t, srv, rdsKeyA)
	ctx := context.Background()
	if err := st.client.Set(ctx, st.oncePrefix+"web_state:OLD", "v1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.Take(ctx, "web_state:OLD"); !ok || err != nil || string(v) != "v1" {
		t.Fatalf("take: %q %v %v", v, ok, err)
	}
	if _, ok, _ := st.Take(ctx, "web_state:OLD"); ok {
		t.Fatal("taken twice")
	}
}

// A put never drops the value it just stored, even when older values of
// its bucket were put in the same millisecond and sort after it.
func TestRedisOncePutKeepsItsOwnValue(t *testing.T) {
	srv := rdsStart(t)
	st := rdsStore(t, srv, rdsKeyA)
	st.onceMax = onceBuckets // one value per bucket
	admin := srv.Client()
	defer admin.Close()
	ctx := context.Background()
	lost := 0
	for i := 999; i >= 200; i-- { // names that sort before the ones put earlier
		k := "web_state:k" + strconv.Itoa(i)
		if err := st.PutOnce(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if admin.Exists(ctx, st.onceKey(k)).Val() != 1 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of 800 puts dropped the value they had just stored", lost)
	}
	if n := rdsOnceKeys(t, st, []*redistest.Server{srv}); n > onceBuckets {
		t.Errorf("Redis holds %d one-time values, want at most %d", n, onceBuckets)
	}
}

// Each kind of one-time value is bounded on its own: a flood of logins
// begun (which need no credential) pushes out older logins begun, never a
// handoff ticket or a code seen.
func TestRedisOnceFloodOfOneKindKeepsTheOthers(t *testing.T) {
	srv := rdsStart(t)
	st := rdsStore(t, srv, rdsKeyA)
	st.onceMax = 64
	ctx := context.Background()
	for _, k := range []string{"web_handoff:T", "web_code:C"} {
		if err := st.PutOnce(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 64 * 20 {
		if err := st.PutOnce(ctx, "web_state:flood"+strconv.Itoa(i), []byte("v"), time.Minute); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if n := rdsOnceKeys(t, st, []*redistest.Server{srv}); n > 64+2 {
		t.Errorf("Redis holds %d one-time values, want at most 66", n)
	}
	for _, k := range []string{"web_handoff:T", "web_code:C"} {
		if _, ok, err := st.Take(ctx, k); !ok || err != nil {
			t.Errorf("%s after a flood of states: %v, %v", k, ok, err)
		}
	}
}
