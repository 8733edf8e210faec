package weblogin

import (
	"context"
	"errors"
	"strconv"
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

// A full store drops its oldest value for a new one, rather than refusing
// every login until its values expire: a flood of logins begun (no
// credential needed) must not lock out the next real one.
func TestMemoryStoreFullDropsTheOldest(t *testing.T) {
	ctx := context.Background()
	c := &testClock{t: time.Unix(1e9, 0)}
	m := NewMemoryStore(2, c.now)
	for _, k := range []string{"a", "b", "c"} {
		if err := m.PutOnce(ctx, k, []byte(k), time.Hour); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	if m.Len() != 2 {
		t.Fatalf("len %d", m.Len())
	}
	if _, ok, _ := m.Take(ctx, "a"); ok {
		t.Fatal("the oldest value outlived a put into a full store")
	}
	for _, k := range []string{"b", "c"} {
		if v, ok, _ := m.Take(ctx, k); !ok || string(v) != k {
			t.Fatalf("take %s: %q %v", k, v, ok)
		}
	}

	// Expired values go first; values taken leave room without dropping any.
	m.PutOnce(ctx, "old", nil, time.Minute)
	m.PutOnce(ctx, "live", nil, time.Hour)
	c.add(2 * time.Minute)
	m.PutOnce(ctx, "new", nil, time.Hour)
	if _, ok, _ := m.Take(ctx, "live"); !ok {
		t.Fatal("a live value was dropped while an expired one was held")
	}
	m.PutOnce(ctx, "x", nil, time.Hour)
	if _, ok, _ := m.Take(ctx, "new"); !ok {
		t.Fatal("a value was dropped though a taken one had left room")
	}
}

// Under a flood the newest values stand, and the store's bookkeeping
// stays bounded however many values come and go.
func TestMemoryStoreFloodKeepsTheNewest(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore(100, nil)
	for i := range 10_000 {
		k := "k" + strconv.Itoa(i)
		if err := m.PutOnce(ctx, k, nil, time.Hour); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		if i%3 == 0 {
			m.Take(ctx, k)
		}
	}
	if m.Len() > 100 {
		t.Fatalf("len %d", m.Len())
	}
	for i := 9_990; i < 10_000; i++ {
		if _, ok, _ := m.Take(ctx, "k"+strconv.Itoa(i)); !ok && i%3 != 0 {
			t.Fatalf("k%d, among the newest, was dropped", i)
		}
	}
	if n := m.orderLen(); n > 2*100+1 {
		t.Fatalf("the store remembers the order of %d keys, holding at most 100", n)
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

// orderLen is how many places the store's order list holds.
func (m *MemoryStore) orderLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.order)
}

// Logins begun need no credential: a flood of them past the bound pushes
// out only other logins begun, never a handoff ticket or a code seen.
func TestKindedStoreKeepsEachKindFromTheOthersFlood(t *testing.T) {
	ctx := context.Background()
	k := NewKindedStore(8, nil, "web_state", "web_handoff", "web_code")
	for _, key := range []string{"web_handoff:T", "web_code:C", "other:O"} {
		if err := k.PutOnce(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if err := k.PutOnce(ctx, "web_state:flood"+strconv.Itoa(i), []byte("v"), time.Minute); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	for _, key := range []string{"web_handoff:T", "web_code:C", "other:O", "web_state:flood99"} {
		if _, ok, err := k.Take(ctx, key); !ok || err != nil {
			t.Fatalf("%s after the flood: %v, %v", key, ok, err)
		}
	}
	if _, ok, _ := k.Take(ctx, "web_state:flood0"); ok {
		t.Fatal("the flood's oldest state is still there: the bound does not hold")
	}
	if err := k.PutOnce(ctx, "web_code:C2", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := k.PutOnce(ctx, "web_code:C2", nil, time.Minute); !errors.Is(err, ErrExists) {
		t.Fatalf("a code put twice: %v", err)
	}
}
