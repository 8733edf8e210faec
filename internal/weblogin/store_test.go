package weblogin

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestMemoryStoreTakesOnce(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore(0, nil)
	if err := m.PutOnce(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := m.PutOnce(ctx, "k", []byte("other"), time.Minute); !errors.Is(err, ErrExists) {
		t.Fatalf("second put: %v", err)
	}
	v, ok, err := m.Take(ctx, "k")
	if err != nil || !ok || string(v) != "v" {
		t.Fatalf("take: %q %v %v", v, ok, err)
	}
	if _, ok, _ := m.Take(ctx, "k"); ok {
		t.Fatal("taken twice")
	}
	if _, ok, _ := m.Take(ctx, "never"); ok {
		t.Fatal("unknown key taken")
	}
}

func TestMemoryStoreExpires(t *testing.T) {
	ctx := context.Background()
	c := &testClock{t: time.Unix(1e9, 0)}
	m := NewMemoryStore(0, c.now)
	m.PutOnce(ctx, "k", []byte("v"), time.Minute)
	c.add(time.Minute)
	if _, ok, _ := m.Take(ctx, "k"); ok {
		t.Fatal("expired key taken")
	}
	m.PutOnce(ctx, "k2", []byte("v"), time.Minute)
	c.add(2 * time.Minute)
	if err := m.PutOnce(ctx, "k2", []byte("new"), time.Minute); err != nil {
		t.Fatalf("put over an expired key: %v", err)
	}
	if err := m.PutOnce(ctx, "k3", nil, 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
}

func TestMemoryStoreIsBounded(t *testing.T) {
	ctx := context.Background()
	c := &testClock{t: time.Unix(1e9, 0)}
	m := NewMemoryStore(2, c.now)
	m.PutOnce(ctx, "a", nil, time.Minute)
	m.PutOnce(ctx, "b", nil, time.Hour)
	if err := m.PutOnce(ctx, "c", nil, time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("third put: %v", err)
	}
	c.add(2 * time.Minute)
	if err := m.PutOnce(ctx, "c", nil, time.Minute); err != nil {
		t.Fatalf("put after expiry: %v", err)
	}
	if m.Len() != 2 {
		t.Fatalf("len %d", m.Len())
	}
}

func TestMemoryStoreValueIsACopy(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore(0, nil)
	b := []byte("abc")
	m.PutOnce(ctx, "k", b, time.Minute)
	b[0] = 'X'
	if v, _, _ := m.Take(ctx, "k"); string(v) != "abc" {
		t.Fatalf("stored %q", v)
	}
}

func TestMemoryStoreConcurrentTakeHasOneWinner(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore(0, nil)
	m.PutOnce(ctx, "k", []byte("v"), time.Minute)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, _ := m.Take(ctx, "k"); ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}
}

func TestMemoryStoreHonoursACancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := NewMemoryStore(0, nil)
	if err := m.PutOnce(ctx, "k", nil, time.Minute); err == nil {
		t.Fatal("put with a cancelled context")
	}
	if _, _, err := m.Take(ctx, "k"); err == nil {
		t.Fatal("take with a cancelled context")
	}
}
