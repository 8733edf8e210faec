// Command verify-assertion is an upstream's check of wechat_auth's identity
// assertion with golang-jwt: it fetches the public keys from
// {route_prefix}/jwks.json, requires an ES256 signature by one of them
// (picked by kid), issuer wechat_auth, audience your appid and an
// unexpired token, and prints the verified claims as JSON.
//
//	go run ./examples/assertion/go -jwks http://127.0.0.1:8190/wx/jwks.json -aud wx1234567890abcdef "$ASSERTION"
//
// In an HTTP server, fetch the keys once at start (and again on an unknown
// kid), read the assertion from the X-WX-ASSERTION header, and use the
// sub claim as the openid.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	jwksURL := flag.String("jwks", os.Getenv("WX_JWKS_URL"), "URL of wechat_auth's jwks.json")
	appid := flag.String("aud", os.Getenv("WX_APPID"), "the appid the assertion must be for")
	flag.Parse()
	assertion := flag.Arg(0)
	if assertion == "" {
		assertion = os.Getenv("WX_ASSERTION")
	}
	if *jwksURL == "" || *appid == "" || assertion == "" {
		fmt.Fprintln(os.Stderr, "usage: verify-assertion -jwks <url> -aud <appid> <assertion>")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := fetchKeys(ctx, *jwksURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "jwks:", err)
		os.Exit(1)
	}
	claims, err := verify(assertion, keys, *appid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "assertion refused:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(claims)
}

// fetchKeys reads a JWK Set and returns its ES256 keys by kid.
func fetchKeys(ctx context.Context, url string) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, Kid, Alg string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]*ecdsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" {
			continue
		}
		if pub, err := p256Key(k.X, k.Y); err == nil {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no ES256 key in the set")
	}
	return keys, nil
}

// p256Key makes a P-256 public key of a JWK's x and y. RFC 7518 writes
// each coordinate at its full 32 bytes; ParseUncompressedPublicKey refuses
// a point that is not on the curve, which an attacker's key set could
// otherwise slip in.
func p256Key(x64, y64 string) (*ecdsa.PublicKey, error) {
	x, errX := base64.RawURLEncoding.DecodeString(x64)
	y, errY := base64.RawURLEncoding.DecodeString(y64)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("a P-256 coordinate is 32 bytes of base64url")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4) // uncompressed: 0x04 || x || y
	point = append(point, x...)
	point = append(point, y...)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

// verify checks the assertion and returns its claims.
func verify(assertion string, keys map[string]*ecdsa.PublicKey, appid string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if key, ok := keys[kid]; ok {
			return key, nil
		}
		return nil, fmt.Errorf("unknown kid %q: fetch jwks.json again", kid)
	},
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer("wechat_auth"),
		jwt.WithAudience(appid),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	if err != nil {
		return nil, err
	}
	if sub, _ := claims.GetSubject(); sub == "" {
		return nil, errors.New("no sub (openid)")
	}
	return claims, nil
}
