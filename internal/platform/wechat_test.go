package platform

import "testing"

// Two holds on one app share its access-token cache; releasing one keeps
// the cache for the other, and it goes when the last hold is released.
func TestTokenCacheIsSharedAndKeptWhileHeld(t *testing.T) {
	s := Settings{Base: "http://127.0.0.1:1", Secrets: map[string]string{"wxpooltest": "secret"}}
	a, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	key := TokenCacheKey(s.Base, false, "wxpooltest", "secret")
	if refs, ok := tokenCaches.References(key); !ok || refs != 2 {
		t.Fatalf("two holds: %d references, want 2", refs)
	}
	a.Close()
	if refs, ok := tokenCaches.References(key); !ok || refs != 1 {
		t.Fatalf("releasing one hold left %d references, want 1: the other still holds the cache", refs)
	}
	b.Close()
	if _, ok := tokenCaches.References(key); ok {
		t.Fatal("the cache is still pooled after every hold was released")
	}
}
