package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
