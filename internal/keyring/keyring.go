// Package keyring holds the HS256 keys tokens are signed and verified with:
// a ring of keys named by kid, and the generated ring kept (and rotated) in
// Caddy's storage.
package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one HS256 key of a key ring with its key id.
type Key struct {
	Kid    string
	Secret []byte
}

// Ring holds the keys tokens are verified with. The first signs; every
// key verifies. A ring is never changed once made: a rotation makes a new
// one.
type Ring struct {
	Keys  []*Key // keys[0] signs
	ByKID map[string]*Key
	Set   jwt.VerificationKeySet // every key, for tokens without kid
	// maxTTL is the longest token_ttl any config sharing generated keys
	// issued tokens under (0 for configured keys): a token of the ring may
	// live that long.
	MaxTTL time.Duration
}

// kidInfo is the HMAC message of key ids: a kid names a key without
// revealing any part of it, and cannot be computed without it.
const kidInfo = "wechat_auth kid v1"

// KeyID returns the kid of a signing key: 12 characters of base64url of
// HMAC-SHA256(key, kidInfo).
func KeyID(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kidInfo))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

// New makes a ring of secrets, the first of which signs. Duplicate
// keys are kept once.
func New(secrets ...[]byte) *Ring {
	r := &Ring{ByKID: make(map[string]*Key, len(secrets))}
	for _, s := range secrets {
		k := &Key{Kid: KeyID(s), Secret: s}
		if _, dup := r.ByKID[k.Kid]; dup {
			continue
		}
		r.ByKID[k.Kid] = k
		r.Keys = append(r.Keys, k)
		r.Set.Keys = append(r.Set.Keys, k.Secret)
	}
	return r
}

// Signer is the key that signs new tokens.
func (r *Ring) Signer() *Key { return r.Keys[0] }

// Kids returns the key ids of the ring, the signing key's first. A kid
// names a key without revealing it; every token carries one.
func (r *Ring) Kids() []string {
	kids := make([]string, len(r.Keys))
	for i, k := range r.Keys {
		kids[i] = k.Kid
	}
	return kids
}

// SameAs reports whether both rings hold the same keys in the same order
// and allow the same token lifetime.
func (r *Ring) SameAs(o *Ring) bool {
	if o == nil || len(r.Keys) != len(o.Keys) || r.MaxTTL != o.MaxTTL {
		return false
	}
	for i := range r.Keys {
		if r.Keys[i].Kid != o.Keys[i].Kid {
			return false
		}
	}
	return true
}

// MinSigningKey is the shortest HS256 key accepted, in bytes.
const MinSigningKey = 32
