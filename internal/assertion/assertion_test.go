package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddyserver/certmagic"
	"github.com/golang-jwt/jwt/v5"
)

// TestAssertionIsShortLivedAndRenewed: an assertion lives at most a minute
// (Caddy's logs print it), is served from the cache until its 30 s are
// over, then signed again; it never outlives the token.
func TestAssertionIsShortLivedAndRenewed(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(key, "X-Wx-Assertion")
	if err != nil {
		t.Fatal(err)
	}
	var drops []func()
	var delays []time.Duration
	afterFunc = func(d time.Duration, f func()) *time.Timer {
		delays = append(delays, d)
		drops = append(drops, f)
		return nil
	}
	t.Cleanup(func() { afterFunc = time.AfterFunc })

	now := time.Now().Truncate(time.Second)
	id := &identity.Identity{OpenID: "o1", AppID: "wx0000000000000001", Expires: now.Add(2 * time.Hour)}
	claims := func(raw string) (iat, exp time.Time) {
		t.Helper()
		c := jwt.MapClaims{}
		if _, err := jwt.NewParser().ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }); err != nil {
			t.Fatal(err)
		}
		i, _ := c.GetIssuedAt()
		e, _ := c.GetExpirationTime()
		return i.Time, e.Time
	}
	first := s.Of(id)
	if iat, exp := claims(first); exp.Sub(iat) != time.Minute || iat.Before(now) {
		t.Fatalf("iat %v exp %v, want now and a minute later", iat, exp)
	}
	if len(drops) != 1 || delays[0] != 30*time.Second {
		t.Fatalf("drop scheduled %v, want once after 30s", delays)
	}
	if again := s.Of(id); again != first || len(drops) != 1 {
		t.Fatal("a cached assertion was signed again before its 30 s were over")
	}
	drops[0]() // 30 s later
	renewed := s.Of(id)
	if renewed == first || len(drops) != 2 {
		t.Fatal("the assertion was served again after its 30 s were over")
	}
	// A stale drop does not remove the newer assertion.
	drops[0]()
	if s.Of(id) != renewed {
		t.Fatal("the first assertion's drop removed the renewed one")
	}
	// Near the token's end the assertion ends with it.
	late := id.Expires.Add(-10 * time.Second)
	if _, exp := claims(s.renew(id, late)); !exp.Equal(id.Expires) {
		t.Fatalf("exp %v outlives the token's %v", exp, id.Expires)
	}
}

func TestAssertionKeyGeneratedOnceUnderConcurrentStarts(t *testing.T) {
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	const n = 4
	keys := make([]*ecdsa.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = StoredKey(context.Background(), storage, KeyName)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Fatal("instances starting at once on one storage generated different keys")
		}
	}
}
