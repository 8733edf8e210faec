package session

import (
	"context"
	"path"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddyserver/certmagic"
)

func TestMemoryStoreKeepsRevocationsInTheNewestStorage(t *testing.T) {
	oldStorage := &certmagic.FileStorage{Path: t.TempDir()}
	newStorage := &certmagic.FileStorage{Path: t.TempDir()}
	m, err := NewMemory(10, oldStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()

	// A reload onto another storage: logouts must be kept where the next
	// start will look for them.
	m.Reuse(0, newStorage)
	ctx := context.Background()
	if err := m.Revoke(ctx, "sid-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	key := path.Join(revocationPrefix, "sid-1")
	if !newStorage.Exists(ctx, key) {
		t.Error("the revocation is not in the new config's storage")
	}
	if oldStorage.Exists(ctx, key) {
		t.Error("the revocation went to the old config's storage")
	}

	restarted, err := NewMemory(10, newStorage)
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Destruct()
	if !restarted.Revoked("sid-1", time.Now()) {
		t.Error("after a restart on the new storage the session is no longer revoked")
	}
}

func TestMemoryStoreReuseResizesOnlyWhenAsked(t *testing.T) {
	m, err := NewMemory(1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	capacity := func() int64 { // the cache's and the sessions set aside
		m.refused.mu.Lock()
		defer m.refused.mu.Unlock()
		return m.cache.MaxCost() + int64(m.refused.max)
	}
	m.Reuse(0, nil)
	if got := capacity(); got != 1000 {
		t.Fatalf("a config without max_sessions changed the shared capacity to %d", got)
	}
	m.Reuse(50, nil)
	if got := capacity(); got != 50 {
		t.Fatalf("max_sessions 50 on reload left the capacity at %d", got)
	}
}

// At capacity a new login must still find its session: ristretto's
// admission policy refuses a newcomer that is used less than the sessions
// it would evict, so storing a session must not count as a use of it.
func TestMemoryStoreAtCapacityAdmitsNewSessions(t *testing.T) {
	metrics.Init(nil)
	m, err := NewMemory(1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	ctx := context.Background()
	admitted, tried := 0, 0
	for i := 0; i < 3000; i++ {
		s := &Session{SID: NewID(), AppID: "wxapp", OpenID: "o", SessionKey: "k", Created: time.Now()}
		if err := m.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		if i >= 2000 { // the store is full by now
			tried++
			// GetTTL, not Get: the test must not count uses of its own.
			if _, ok := m.cache.GetTTL(s.SID); ok {
				admitted++
			}
		}
	}
	if admitted < tried*95/100 {
		t.Fatalf("a full store kept %d of %d new sessions right after their login", admitted, tried)
	}
}

// At capacity with every stored session read at least once (each user has
// decrypted something), ristretto refuses nearly every new session; the
// store keeps those aside, so each new login still decrypts right after
// it, and a logout still ends it.
func TestMemoryStoreFullOfReadSessionsKeepsNewLogins(t *testing.T) {
	metrics.Init(nil)
	m, err := NewMemory(500, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destruct()
	ctx := context.Background()
	newSession := func() *Session {
		return &Session{SID: NewID(), AppID: "wxapp", OpenID: "o", SessionKey: "k", Created: time.Now()}
	}
	for range 500 {
		s := newSession()
		if err := m.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			m.Get(ctx, s.SID)
		}
	}
	time.Sleep(100 * time.Millisecond) // ristretto counts uses in the background
	var sessions []*Session
	found := 0
	for range 200 {
		s := newSession()
		if err := m.Put(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
		if got, err := m.Get(ctx, s.SID); err == nil && got.SID == s.SID {
			found++
		}
	}
	if found != len(sessions) {
		t.Fatalf("a store full of read sessions kept %d of %d new logins", found, len(sessions))
	}
	newest, before := sessions[len(sessions)-1], sessions[len(sessions)-2]
	if err := m.SetSessionKey(ctx, newest, "k2"); err != nil {
		t.Fatalf("a new key for the newest session: %v", err)
	}
	if got, err := m.Get(ctx, newest.SID); err != nil || got.SessionKey != "k2" {
		t.Fatalf("after the new key: %+v, %v", got, err)
	}
	if err := m.Delete(ctx, before.SID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, before.SID); err == nil {
		t.Fatal("a deleted session is still found")
	}
}

// TestPutKeepsItsOwnSessionTheCacheSetAside: the cache may evict a
// session into the ones set aside before put, which stored it, returns;
// put then drops an older copy there, never that one.
func TestPutKeepsItsOwnSessionTheCacheSetAside(t *testing.T) {
	r := NewRefused(10)
	s := &Session{SID: "sid-1", expires: time.Now().Add(time.Hour)}
	r.setAside(s) // evicted while put was under way
	r.deleteOlder(s.SID, s)
	if _, _, ok := r.Get(s.SID, time.Now()); !ok {
		t.Fatal("put dropped the copy the cache had just set aside")
	}
	r.deleteOlder(s.SID, &Session{SID: s.SID})
	if _, _, ok := r.Get(s.SID, time.Now()); ok {
		t.Fatal("an older copy set aside outlived a newer put")
	}
}

// The memory store's token horizon survives a restart, so a logout after a
// restart that cut token_ttl still outlasts the tokens issued before it.
func TestMemoryStoreTokenHorizonSurvivesRestart(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	ctx := context.Background()
	m, err := NewMemory(10, storage)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(48 * time.Hour)
	if err := m.ExtendHorizon(ctx, exp); err != nil {
		t.Fatal(err)
	}
	m.Destruct()

	restarted, err := NewMemory(10, storage)
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Destruct()
	if hz, _ := restarted.Horizon(ctx); hz.Before(exp) {
		t.Fatalf("after a restart the horizon is %v, before the exp %v of a token issued earlier", hz, exp)
	}
}
