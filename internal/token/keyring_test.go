package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddyserver/certmagic"
	"github.com/golang-jwt/jwt/v5"
)

const (
	ringKeyOld = "old-signing-key-for-rotation-tests-0123456789"
	ringKeyNew = "new-signing-key-for-rotation-tests-9876543210"
)

func ringCodec(keys ...string) *Codec {
	tc := New(nil, IssuerProduction, time.Hour, map[string]string{testAppID: ""})
	secrets := make([][]byte, len(keys))
	for i, k := range keys {
		secrets[i] = []byte(k)
	}
	tc.ring.Store(keyring.New(secrets...))
	return tc
}

func issueWith(t *testing.T, tc *Codec) string {
	t.Helper()
	tok, _, err := tc.Issue(testSession().Subject, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kidOf(t *testing.T, tok string) any {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header["kid"]
}

func TestKeyIDNamesTheKeyWithoutRevealingIt(t *testing.T) {
	a, b := keyring.KeyID([]byte(ringKeyOld)), keyring.KeyID([]byte(ringKeyNew))
	if a == b || a != keyring.KeyID([]byte(ringKeyOld)) || len(a) != 12 {
		t.Fatalf("kids %q %q: want distinct, stable, 12 characters", a, b)
	}
	// No 4 characters of the key, in any encoding a kid could use, appear
	// in its kid.
	for _, key := range []string{ringKeyOld, ringKeyNew} {
		kid := keyring.KeyID([]byte(key))
		for _, e := range []string{key, base64.StdEncoding.EncodeToString([]byte(key)), base64.RawURLEncoding.EncodeToString([]byte(key))} {
			for i := 0; i+4 <= len(e); i++ {
				if strings.Contains(kid, e[i:i+4]) {
					t.Errorf("kid %q holds %q of the key", kid, e[i:i+4])
				}
			}
		}
	}
}

func TestRotationByConfiguredKeys(t *testing.T) {
	old := ringCodec(ringKeyOld)
	oldTok := issueWith(t, old)
	if kidOf(t, oldTok) != keyring.KeyID([]byte(ringKeyOld)) {
		t.Fatalf("token's kid %v is not its key's", kidOf(t, oldTok))
	}
	// Step 1: signing_key NEW OLD.
	both := ringCodec(ringKeyNew, ringKeyOld)
	if _, err := both.Verify(oldTok); err != nil {
		t.Fatalf("a token of the old key is refused after signing_key NEW OLD: %v", err)
	}
	newTok := issueWith(t, both)
	if kidOf(t, newTok) != keyring.KeyID([]byte(ringKeyNew)) {
		t.Errorf("a new token is not signed with the new key (kid %v)", kidOf(t, newTok))
	}
	// Step 2: signing_key NEW.
	onlyNew := ringCodec(ringKeyNew)
	if _, err := onlyNew.Verify(newTok); err != nil {
		t.Errorf("the refreshed token is refused after signing_key NEW: %v", err)
	}
	if _, err := onlyNew.Verify(oldTok); err == nil {
		t.Error("a token of the removed key still verifies")
	}
}

func TestTokensWithoutKidAndWithWrongKid(t *testing.T) {
	tc := ringCodec(ringKeyNew, ringKeyOld)
	now := time.Now()
	base := jwt.MapClaims{"iss": IssuerProduction, "sub": "oUser", "aud": testAppID, "sid": "sid-1",
		"iat": jwt.NewNumericDate(now), "exp": jwt.NewNumericDate(now.Add(time.Hour))}
	sign := func(key string, kid any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, base)
		if kid != nil {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, key := range []string{ringKeyNew, ringKeyOld} {
		if _, err := tc.Verify(sign(key, nil)); err != nil {
			t.Errorf("a token without kid (an earlier version's) is refused: %v", err)
		}
	}
	other := "another-key-nobody-configured-0123456789abcd"
	for name, tok := range map[string]string{
		"unknown kid":              sign(ringKeyNew, "AAAAAAAAAAAA"),
		"kid of another key":       sign(ringKeyNew, keyring.KeyID([]byte(ringKeyOld))),
		"kid not a string":         sign(ringKeyNew, 7),
		"no kid, unconfigured key": sign(other, nil),
		"its own kid, not ours":    sign(other, keyring.KeyID([]byte(other))),
	} {
		if _, err := tc.Verify(tok); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func testStorage(t *testing.T, dir string) certmagic.Storage {
	t.Helper()
	return &certmagic.FileStorage{Path: dir}
}

func TestGeneratedKeysRotateAndTwoInstancesAgree(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Rotation: time.Hour, Keep: 2 * time.Hour}
	b := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Rotation: time.Hour, Keep: 2 * time.Hour}
	t0 := time.Now()
	ra, err := a.Current(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Current(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !ra.Ring().SameAs(rb.Ring()) || len(ra.Keys) != 1 {
		t.Fatal("two instances on one storage made different keys")
	}
	tcA, tcB := ringCodec(), ringCodec()
	tcA.ring.Store(ra.Ring())
	tcB.ring.Store(rb.Ring())
	first := issueWith(t, tcA)

	// An hour on, both look at once: one rotates, the other finds it.
	t1 := t0.Add(time.Hour + time.Second)
	ra, _ = a.Current(ctx, t1)
	rb, _ = b.Current(ctx, t1)
	if len(ra.Keys) != 2 || !ra.Ring().SameAs(rb.Ring()) {
		t.Fatalf("after rotation: %d keys on A, agreeing with B: %v", len(ra.Keys), ra.Ring().SameAs(rb.Ring()))
	}
	tcA.ring.Store(ra.Ring())
	second := issueWith(t, tcA)
	if kidOf(t, second) == kidOf(t, first) {
		t.Fatal("the rotated ring signs with the old key")
	}
	// B, still on the old ring, learns the new kid by reloading.
	tcB.reload = func() *keyring.Ring { sr, _ := b.Read(ctx); r := sr.Ring(); tcB.ring.Store(r); return r }
	for _, tok := range []string{first, second} {
		if _, err := tcB.Verify(tok); err != nil {
			t.Errorf("B refuses a token: %v", err)
		}
	}
	// The retired key goes once its tokens have expired.
	t2 := t1.Add(2*time.Hour + time.Second)
	ra, _ = a.Current(ctx, t2)
	if len(ra.Keys) != 2 {
		t.Fatalf("want 2 keys (a new one and the one before), got %d", len(ra.Keys))
	}
	for _, k := range ra.Keys {
		if keyring.KeyID(k.Key) == kidOf(t, first) {
			t.Error("the key retired 2 h ago (keep 2 h) is still in the ring")
		}
	}
}

// TestRetiredKeysAreKeptForTheLongestTokenTTL checks that configs sharing
// the generated keys but not token_ttl keep a retired key for the longest
// keep among them: the config rotating is not the only one whose tokens
// the key signed.
func TestRetiredKeysAreKeptForTheLongestTokenTTL(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	long := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Keep: 30 * 24 * time.Hour}
	short := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Rotation: time.Hour, Keep: 2 * time.Hour}
	t0 := time.Now()
	sr, err := long.Current(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	tc := ringCodec()
	tc.ring.Store(sr.Ring())
	first := issueWith(t, tc) // a token under the long token_ttl
	if _, err := short.Current(ctx, t0); err != nil {
		t.Fatal(err)
	}
	// The short config rotates hourly; three rotations later its own keep
	// (2 h) has long passed for the first key.
	var ring *keyring.StoredRing
	for i := 1; i <= 3; i++ {
		if ring, err = short.Current(ctx, t0.Add(time.Duration(i)*(time.Hour+time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if len(ring.Keys) != 4 {
		t.Fatalf("%d keys after 3 rotations, want 4 (the first one kept)", len(ring.Keys))
	}
	verifier := ringCodec()
	verifier.ring.Store(ring.Ring())
	if _, err := verifier.Verify(first); err != nil {
		t.Errorf("a token of the long-lived config is refused after the short one rotated: %v", err)
	}
	// The ring on disk says so for every instance.
	if sr, err := long.Read(ctx); err != nil || sr.Keep != long.Keep {
		t.Errorf("stored keep %v (err %v), want %v", sr.Keep, err, long.Keep)
	}
}

func TestGeneratedKeysTakeOverTheKeyOfEarlierVersions(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st := testStorage(t, dir)
	legacy := []byte("legacy-generated-key-000000000000000000")
	if err := st.Store(ctx, keyring.SigningKeyName, []byte(base64.StdEncoding.EncodeToString(legacy))); err != nil {
		t.Fatal(err)
	}
	g := &keyring.Generated{Storage: st, Name: keyring.SigningKeyName}
	sr, err := g.Current(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Keys) != 1 || string(sr.Keys[0].Key) != string(legacy) {
		t.Fatal("the key an earlier version generated is not the ring's key: its tokens would be refused")
	}
	b, _ := st.Load(ctx, keyring.SigningKeyName+"s")
	var stored keyring.StoredRing
	if json.Unmarshal(b, &stored) != nil || len(stored.Keys) != 1 {
		t.Fatalf("ring not stored: %s", b)
	}
}

// The rings are kept where the docs say, beside the single keys of
// earlier versions.
func TestKeyRingsAreKeptUnderTheirDocumentedNames(t *testing.T) {
	for name, want := range map[string]string{
		keyring.SigningKeyName:        "wechat_auth/signing_keys",
		keyring.SigningKeyNameSandbox: "wechat_auth/signing_keys_sandbox",
	} {
		if got := (&keyring.Generated{Name: name}).RingName(); got != want {
			t.Errorf("the ring of %s is kept as %s, want %s", name, got, want)
		}
	}
}

// Configs sharing generated keys may differ in token_ttl: the ring records
// the longest, so an instance with a shorter token_ttl accepts a token of
// the longer one (issued elsewhere or before a restart) and nothing longer.
func TestGeneratedRingCapsTokensAtTheLongestTokenTTL(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const month = 30 * 24 * time.Hour
	long := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Keep: month + time.Hour, TTL: month}
	short := &keyring.Generated{Storage: testStorage(t, dir), Name: keyring.SigningKeyName, Keep: 3 * time.Hour, TTL: 2 * time.Hour}
	now := time.Now()
	if _, err := long.Current(ctx, now); err != nil {
		t.Fatal(err)
	}
	sr, err := short.Current(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if sr.TTL != month {
		t.Fatalf("stored ttl %v, want the longest token_ttl %v", sr.TTL, month)
	}
	verifier := New(nil, IssuerProduction, 2*time.Hour, map[string]string{testAppID: ""})
	verifier.ring.Store(sr.Ring())
	// Signed here directly, not issued: this process never issued a token
	// of that lifetime, only the ring knows it.
	sign := func(life time.Duration) string {
		c := goodClaims()
		c["exp"] = now.Add(life).Unix()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["kid"] = keyring.KeyID(sr.Keys[0].Key)
		s, err := tok.SignedString(sr.Keys[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := verifier.Verify(sign(month)); err != nil {
		t.Errorf("a token of the longest token_ttl sharing the keys is refused: %v", err)
	}
	if _, err := verifier.Verify(sign(month + time.Hour)); err == nil {
		t.Error("a token longer than any token_ttl sharing the keys is accepted")
	}
}
