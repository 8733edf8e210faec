package session

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
)

// benchSession is a session with fields of WeChat's real sizes.
func benchSession(i int) *Session {
	n := strconv.Itoa(i)
	return &Session{
		SID:        NewID(),
		AppID:      "wx4f4bc4dec97d474b",
		OpenID:     "oGZUI0egBJY1zhBYw2Kh" + pad8(n),
		UnionID:    "ocMvos6NjeKLIBqg5Mr9" + pad8(n),
		SessionKey: "tiihtNczf5v6AKRyjwEUhQ==",
		Created:    time.Now(),
	}
}

func pad8(s string) string {
	for len(s) < 8 {
		s = "0" + s
	}
	return s
}

func newBenchStore(tb testing.TB, max int) *Memory {
	tb.Helper()
	metrics.Init(nil)
	m, err := NewMemory(max, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Destruct() })
	return m
}

// BenchmarkSessionStoreGet is the lookup of a session by a route that
// needs its session_key (userinfo, phone, decrypt, refresh).
func BenchmarkSessionStoreGet(b *testing.B) {
	m := newBenchStore(b, 0)
	ctx := context.Background()
	var sids []string
	for i := range 1024 {
		s := benchSession(i)
		m.Put(ctx, s, time.Hour)
		sids = append(sids, s.SID)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := m.Get(ctx, sids[i%len(sids)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionStorePut is the store of a new session at login,
// including the wait until the next request can find it.
func BenchmarkSessionStorePut(b *testing.B) {
	m := newBenchStore(b, 0)
	ctx := context.Background()
	sessions := make([]*Session, 4096)
	for i := range sessions {
		sessions[i] = benchSession(i)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if err := m.Put(ctx, sessions[i%len(sessions)], time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionMemory reports the heap held per session by the memory
// store with 100,000 sessions (its default capacity): the session itself,
// its strings, and ristretto's bookkeeping.
func BenchmarkSessionMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		perSession, held := sessionMemory(b, n)
		b.ReportMetric(perSession, "bytes/session")
		b.ReportMetric(float64(held), "sessions")
	}
}

// sessionMemory fills a store of capacity n with n sessions and returns the
// heap it holds per session (the sessions, their strings and ristretto's
// bookkeeping), measured after a GC, and how many it holds.
func sessionMemory(tb testing.TB, n int) (float64, int) {
	ctx := context.Background()
	sids := make([]string, n) // made before the first measure: not counted

	before := heapInUse()
	m := newBenchStore(tb, n)
	for i := range sids {
		s := benchSession(i)
		m.Put(ctx, s, time.Hour)
		sids[i] = s.SID // the same string the store holds
	}
	after := heapInUse()

	held := 0
	for _, sid := range sids {
		if _, err := m.Get(ctx, sid); err == nil {
			held++
		}
	}
	runtime.KeepAlive(m)
	return float64(after-before) / float64(held), held
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryStoreHoldsAtMostMaxSessions fills a store past its capacity:
// it must never hold more sessions than max_sessions, and it must still
// hold most of that many (ristretto without IgnoreInternalCost would hold
// a small fraction).
func TestMemoryStoreHoldsAtMostMaxSessions(t *testing.T) {
	const max = 1000
	m := newBenchStore(t, max)
	ctx := context.Background()
	var sids []string
	for i := range 3 * max {
		s := benchSession(i)
		m.Put(ctx, s, time.Hour)
		sids = append(sids, s.SID)
	}
	held := 0
	for _, sid := range sids {
		if _, err := m.Get(ctx, sid); err == nil {
			held++
		}
	}
	if held > max {
		t.Errorf("store with max_sessions %d holds %d sessions", max, held)
	}
	if held < max*9/10 {
		t.Errorf("store with max_sessions %d holds only %d sessions", max, held)
	}
	t.Logf("max_sessions %d: %d held after %d logins", max, held, 3*max)
}
