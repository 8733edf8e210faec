package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwk is a P-256 key as wechat_auth's jwks.json writes it, x and y cut
// from the uncompressed point (0x04 || x || y).
func jwk(t *testing.T, kid string, pub *ecdsa.PublicKey, edit func(point []byte) (x, y []byte)) map[string]string {
	t.Helper()
	point, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	x, y := point[1:33], point[33:65]
	if edit != nil {
		x, y = edit(point)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": enc(x), "y": enc(y)}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, key *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "wechat_auth", "sub": "o-user", "aud": "wx1234567890abcdef",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKeySetTakesOnlyValidP256Keys: an assertion signed by the key set's
// real key verifies; keys whose point is off the curve or whose
// coordinates are not 32 bytes are left out, so an assertion naming them
// is refused.
func TestKeySetTakesOnlyValidP256Keys(t *testing.T) {
	good, off, short := newKey(t), newKey(t), newKey(t)
	set := map[string]any{"keys": []map[string]string{
		jwk(t, "good", &good.PublicKey, nil),
		jwk(t, "off-curve", &off.PublicKey, func(p []byte) ([]byte, []byte) {
			y := append([]byte(nil), p[33:65]...)
			y[31] ^= 1
			return p[1:33], y
		}),
		jwk(t, "short", &short.PublicKey, func(p []byte) ([]byte, []byte) { return p[2:33], p[33:65] }),
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()

	keys, err := fetchKeys(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys["good"] == nil || !keys["good"].Equal(&good.PublicKey) {
		t.Fatalf("keys = %v, want only the valid key", keys)
	}
	claims, err := verify(sign(t, good, "good"), keys, "wx1234567890abcdef")
	if err != nil {
		t.Fatalf("an assertion signed by the published key: %v", err)
	}
	if sub, _ := claims.GetSubject(); sub != "o-user" {
		t.Fatalf("sub = %q", sub)
	}
	for _, kid := range []string{"off-curve", "short"} {
		key := off
		if kid == "short" {
			key = short
		}
		if _, err := verify(sign(t, key, kid), keys, "wx1234567890abcdef"); err == nil || !strings.Contains(err.Error(), "unknown kid") {
			t.Errorf("an assertion naming the %s key: err = %v, want unknown kid", kid, err)
		}
	}
}
