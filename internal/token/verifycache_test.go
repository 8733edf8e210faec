package token

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"go.uber.org/zap"
)

func cacheTestCodec(apps ...string) *Codec {
	set := make(map[string]string)
	for _, a := range apps {
		set[a] = "secret"
	}
	return New([]byte("bench-signing-key-0123456789abcdef"), IssuerProduction, time.Hour, set)
}

func cacheTestToken(t *testing.T, tc *Codec, appid string, now time.Time) string {
	t.Helper()
	tok, _, err := tc.Issue(Subject{SID: "sid-" + appid, AppID: appid, OpenID: "o-" + appid}, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyCacheNeverServesAForgedSignature(t *testing.T) {
	tc := cacheTestCodec("wxA")
	now := time.Now()
	tok := cacheTestToken(t, tc, "wxA", now)
	if _, err := tc.VerifyCached(tok, now); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	// Same header and claims, another signature: a different cache key,
	// so it is verified, and refused.
	c := byte('A')
	if tok[len(tok)-5] == c {
		c = 'B'
	}
	forged := tok[:len(tok)-5] + string(c) + tok[len(tok)-4:]
	if _, err := tc.VerifyCached(forged, now); err == nil {
		t.Fatal("token with a forged signature accepted after the real one was cached")
	}
	if _, err := tc.VerifyCached(tok+"x", now); err == nil {
		t.Fatal("token with a suffix accepted after the real one was cached")
	}
}

func TestVerifyCacheStopsServingAtExp(t *testing.T) {
	tc := cacheTestCodec("wxA")
	now := time.Now()
	tok := cacheTestToken(t, tc, "wxA", now)
	id, err := tc.VerifyCached(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.VerifyCached(tok, id.Expires.Add(-time.Second)); err != nil {
		t.Errorf("cached token refused before its exp: %v", err)
	}
	if _, err := tc.VerifyCached(tok, id.Expires); err == nil {
		t.Error("cached token accepted at its exp")
	}
	if _, err := tc.VerifyCached(tok, id.Expires.Add(time.Hour)); err == nil {
		t.Error("cached token accepted after its exp")
	}
}

// An expired token is never put in the cache, whatever clock the caller
// has.
func TestVerifyCacheRefusesATokenExpiredAtItsClock(t *testing.T) {
	tc := cacheTestCodec("wxA")
	tok := cacheTestToken(t, tc, "wxA", time.Now())
	if _, err := tc.VerifyCached(tok, time.Now().Add(2*time.Hour)); err == nil {
		t.Fatal("token accepted at a time after its exp")
	}
	if n := tc.verified.len(); n != 0 {
		t.Fatalf("cache holds %d tokens after refusing one", n)
	}
}

// A token one config accepted is not accepted by another that serves other
// apps, even with the same key: each codec verifies for itself.
func TestVerifyCacheIsPerCodec(t *testing.T) {
	a, b := cacheTestCodec("wxA"), cacheTestCodec("wxB")
	now := time.Now()
	tok := cacheTestToken(t, a, "wxA", now)
	if _, err := a.VerifyCached(tok, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyCached(tok, now); err == nil {
		t.Fatal("a config that does not serve wxA accepted its token")
	}
	sandbox := New([]byte("bench-signing-key-0123456789abcdef"), IssuerSandbox, time.Hour, map[string]string{"wxA": ""})
	if _, err := sandbox.VerifyCached(tok, now); err == nil {
		t.Fatal("a sandbox config accepted a production token")
	}
}

func TestVerifyCacheHoldsAtMostTwoGenerations(t *testing.T) {
	c := newVerifyCache(100)
	exp := time.Now().Add(time.Hour)
	hot := &identity.Identity{SID: "hot", Expires: exp}
	c.put("hot", hot)
	for i := range 1000 {
		c.put(strconv.Itoa(i), &identity.Identity{Expires: exp})
		// A token in use stays cached across generations.
		if _, ok := c.get("hot", time.Now()); !ok {
			t.Fatalf("token in use dropped after %d others", i)
		}
		if n := c.len(); n > 2*100+1 {
			t.Fatalf("cache of generation 100 holds %d tokens", n)
		}
	}
	if _, ok := c.get("0", time.Now()); ok {
		t.Error("an idle token is still cached ten generations later")
	}
}

// Under concurrent requests (run with -race) while new tokens rotate the
// generations, a hit always returns the identity of the token asked for,
// and the cache stays bounded.
func TestVerifyCacheConcurrentHitsAreTheTokensOwn(t *testing.T) {
	c := newVerifyCache(100)
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := "tok-" + strconv.Itoa((i*7+g)%3000)
				if id, ok := c.get(key, time.Now()); ok && id.SID != key {
					errs <- key + " answered with the identity of " + id.SID
					return
				}
			}
		})
	}
	for i := range 3000 {
		key := "tok-" + strconv.Itoa(i)
		c.put(key, &identity.Identity{SID: key, Expires: exp})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := c.len(); n > 2*100+1 {
		t.Fatalf("cache of generation 100 holds %d tokens", n)
	}
}

// Once a generated key leaves the ring (pruned after its keep), a token it
// signed is refused, even one the verified token cache holds.
func TestCachedTokenRefusedOnceItsKeyLeavesTheRing(t *testing.T) {
	ctx := context.Background()
	g := &keyring.Generated{Storage: testStorage(t, t.TempDir()), Name: keyring.SigningKeyName, Rotation: time.Hour, Keep: 2 * time.Hour}
	t0 := time.Now()
	sr, err := g.Current(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	tc := ringCodec()
	tc.ring.Store(sr.Ring())
	w := &Watch{g: g, tc: tc, log: zap.NewNop()}
	tok := issueWith(t, tc)
	if _, err := tc.VerifyCached(tok, time.Now()); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}

	step := func(at time.Time) {
		t.Helper()
		sr, err := g.Current(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		w.apply(sr.Ring())
		w.mu.Unlock()
	}
	t1 := t0.Add(time.Hour + time.Second)
	step(t1) // rotated: the key is retired but still verifies
	if _, err := tc.VerifyCached(tok, time.Now()); err != nil {
		t.Fatalf("token of a retired key still kept refused: %v", err)
	}
	step(t1.Add(2*time.Hour + time.Second)) // pruned
	if kidOf(t, tok) == tc.ring.Load().Keys[len(tc.ring.Load().Keys)-1].Kid {
		t.Fatal("the test's key is still in the ring")
	}
	if _, err := tc.VerifyCached(tok, time.Now()); err == nil {
		t.Error("a cached token whose key left the ring still verifies")
	}
	if _, err := tc.Verify(tok); err == nil {
		t.Error("a token whose key left the ring still verifies")
	}
}
