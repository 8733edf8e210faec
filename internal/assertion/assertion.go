// Package assertion signs identity assertions: ES256 JWTs of the verified
// identity an upstream checks against the published JWK Set, with the key
// given or generated once in Caddy's storage.
package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultHeader carries the signed identity assertion upstream.
const DefaultHeader = "X-WX-ASSERTION"

// assertionIssuer is the iss of every assertion, sandbox or not: a sandbox
// signs with its own key (kept apart in Caddy's storage), so an upstream
// that trusts the production keys refuses sandbox assertions.
const assertionIssuer = "wechat_auth"

// Signer signs identity assertions: ES256 JWTs an upstream can
// verify against the public key published at jwks.json, so a request
// that reached it by another path than wechat_auth cannot claim an
// identity.
type Signer struct {
	key    *ecdsa.PrivateKey
	kid    string // the key's RFC 7638 thumbprint
	header string // canonical name of the header that carries it
	jwks   []byte // the JWK Set document
}

// assertionLifetime is the longest an assertion lives: its exp is at most
// this long after its iat. Caddy's logs print request headers in full
// (reverse_proxy's DEBUG "upstream roundtrip" line, access logs, which see
// the headers a handler sets) and redact only Authorization, Cookie and
// their kin, so an assertion must be worthless soon after it is written
// down anywhere.
const assertionLifetime = 60 * time.Second

// assertionRenewal is the age at which a cached assertion is dropped, so
// the next request signs a new one: every assertion an upstream receives
// has at least assertionLifetime-assertionRenewal left to allow for clock
// skew.
const assertionRenewal = 30 * time.Second

// Header is the canonical name of the header that carries assertions.
func (s *Signer) Header() string { return s.header }

// Kid is the key's RFC 7638 thumbprint.
func (s *Signer) Kid() string { return s.kid }

// JWKS is the JWK Set document that publishes the key.
func (s *Signer) JWKS() []byte { return s.jwks }

// afterFunc schedules the drop of a cached assertion (time.AfterFunc; a
// test replaces it to run the drop at once).
var afterFunc = time.AfterFunc

// NewSigner makes a signer for a P-256 key.
func NewSigner(key *ecdsa.PrivateKey, header string) (*Signer, error) {
	pub, err := key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil || len(pub) != 65 || key.Curve != elliptic.P256() {
		return nil, errors.New("the assertion key must be an ECDSA P-256 key")
	}
	x := base64.RawURLEncoding.EncodeToString(pub[1:33])
	y := base64.RawURLEncoding.EncodeToString(pub[33:])
	// RFC 7638: the thumbprint is over the required members, in
	// lexicographic order, with no whitespace.
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	s := &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:]), header: header}
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	s.jwks, err = json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{[]jwk{{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: s.kid, Use: "sig", Alg: "ES256"}}})
	return s, err
}

// sign makes the assertion of a verified identity: iss wechat_auth, sub
// the openid, aud the appid, unionid when known, iat now and exp
// assertionLifetime later, or the token's own exp when that comes first,
// so the assertion never outlives the token.
func (s *Signer) sign(id *identity.Identity, now time.Time) (string, error) {
	exp := now.Add(assertionLifetime)
	if id.Expires.Before(exp) {
		exp = id.Expires
	}
	c := jwt.MapClaims{
		"iss": assertionIssuer,
		"sub": id.OpenID,
		"aud": id.AppID,
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(exp),
	}
	if id.UnionID != "" {
		c["unionid"] = id.UnionID
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// Of returns the assertion for id, signing it when the identity holds
// none: the identity of a token is shared by every request that carries
// it (the verified token cache), so the hot path pays a pointer load and
// no clock read. A timer drops the cached assertion once it is
// assertionRenewal old, so a busy token costs one signature every
// assertionRenewal. Two requests that race on a new token may both sign;
// either result is right.
func (s *Signer) Of(id *identity.Identity) string {
	if a := id.Assertion.Load(); a != nil && a.By == s {
		return a.JWT
	}
	return s.renew(id, time.Now())
}

// Assert signs the assertion of an event Caddy verified itself (a push, a
// pay notification) rather than of a token: sub the event's openid (empty
// when no user sent it), aud the appid, iat now and exp assertionLifetime
// later. Each delivery attempt signs its own, so a retry hours later
// still carries a fresh one; "" only if signing failed.
func (s *Signer) Assert(openid, appid string) string {
	now := time.Now()
	tok, err := s.sign(&identity.Identity{OpenID: openid, AppID: appid, Expires: now.Add(assertionLifetime)}, now)
	if err != nil {
		return ""
	}
	return tok
}

// renew signs a new assertion for id at now, keeps it with the identity
// and schedules its drop.
func (s *Signer) renew(id *identity.Identity, now time.Time) string {
	tok, err := s.sign(id, now)
	if err != nil {
		// Signing with a valid P-256 key does not fail; should it, the
		// request goes on without an assertion, which an upstream that
		// requires one refuses.
		return ""
	}
	a := &identity.Signed{By: s, JWT: tok}
	id.Assertion.Store(a)
	afterFunc(assertionRenewal, func() { id.Assertion.CompareAndSwap(a, nil) })
	return tok
}

// ParseKey reads a P-256 private key from PEM: PKCS#8 ("PRIVATE
// KEY") or SEC 1 ("EC PRIVATE KEY"). An "EC PARAMETERS" block, which
// `openssl ecparam -genkey` writes first, is skipped.
func ParseKey(pemText []byte) (*ecdsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, pemText = pem.Decode(pemText)
		if block == nil {
			return nil, errors.New("no PEM private key found (write it as {file./path/key.pem})")
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("the EC PRIVATE KEY block does not parse")
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, errors.New("the PRIVATE KEY block does not parse")
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("the key is %T; it must be an ECDSA P-256 key", k)
			}
			return ek, nil
		default:
			return nil, fmt.Errorf("a PEM block of type %q is not a private key in PKCS#8 or SEC 1 form", block.Type)
		}
	}
}
