package keyring

import "testing"

// Two holds of the same keys share one ring; releasing one keeps it for
// the other, and it goes with the last hold. Other keys get another ring.
func TestHoldSharesOneRingPerKeySet(t *testing.T) {
	k1 := []byte("pool-test-signing-key-0123456789abcdef")
	k2 := []byte("pool-test-previous-key-0123456789abcdef")
	a, na, err := Hold(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	b, nb, err := Hold(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || na != nb {
		t.Fatal("two holds of the same keys got two rings")
	}
	c, nc, err := Hold(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	if c == a || c.Signer().Kid != KeyID(k2) {
		t.Fatal("the same keys with another signing key share the ring")
	}
	Release(nc)
	Release(na)
	if refs, ok := rings.References(nb); !ok || refs != 1 {
		t.Fatalf("releasing one hold left %d references, want 1", refs)
	}
	Release(nb)
	if _, ok := rings.References(nb); ok {
		t.Fatal("the ring is still pooled after every hold was released")
	}
}
