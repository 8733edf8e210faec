package wechatauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ringKey is one HS256 key of a key ring with its key id.
type ringKey struct {
	kid    string
	secret []byte
}

// keyRing holds the keys tokens are verified with. The first signs; every
// key verifies. A ring is never changed once made: a rotation makes a new
// one.
type keyRing struct {
	keys  []*ringKey // keys[0] signs
	byKID map[string]*ringKey
	set   jwt.VerificationKeySet // every key, for tokens without kid
	// maxTTL is the longest token_ttl any config sharing generated keys
	// issued tokens under (0 for configured keys): a token of the ring may
	// live that long.
	maxTTL time.Duration
}

// kidInfo is the HMAC message of key ids: a kid names a key without
// revealing any part of it, and cannot be computed without it.
const kidInfo = "wechat_auth kid v1"

// keyID returns the kid of a signing key: 12 characters of base64url of
// HMAC-SHA256(key, kidInfo).
func keyID(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kidInfo))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

// newKeyRing makes a ring of secrets, the first of which signs. Duplicate
// keys are kept once.
func newKeyRing(secrets ...[]byte) *keyRing {
	r := &keyRing{byKID: make(map[string]*ringKey, len(secrets))}
	for _, s := range secrets {
		k := &ringKey{kid: keyID(s), secret: s}
		if _, dup := r.byKID[k.kid]; dup {
			continue
		}
		r.byKID[k.kid] = k
		r.keys = append(r.keys, k)
		r.set.Keys = append(r.set.Keys, k.secret)
	}
	return r
}

// signer is the key that signs new tokens.
func (r *keyRing) signer() *ringKey { return r.keys[0] }

// kids returns the key ids of the ring, the signing key's first. A kid
// names a key without revealing it; every token carries one.
func (r *keyRing) kids() []string {
	kids := make([]string, len(r.keys))
	for i, k := range r.keys {
		kids[i] = k.kid
	}
	return kids
}

// sameAs reports whether both rings hold the same keys in the same order
// and allow the same token lifetime.
func (r *keyRing) sameAs(o *keyRing) bool {
	if o == nil || len(r.keys) != len(o.keys) || r.maxTTL != o.maxTTL {
		return false
	}
	for i := range r.keys {
		if r.keys[i].kid != o.keys[i].kid {
			return false
		}
	}
	return true
}

var errUnknownKID = errors.New("unknown kid")

// verificationKey returns what a token is checked against: the key its kid
// names, or every key for a token without kid (issued before key ids).
// An unknown kid is asked of reload (when the keys are generated and may
// have been rotated by another instance) before it is refused.
func (tc *tokenCodec) verificationKey(t *jwt.Token) (any, error) {
	ring := tc.ring.Load()
	v, ok := t.Header["kid"]
	if !ok {
		return ring.set, nil
	}
	kid, ok := v.(string)
	if !ok {
		return nil, errUnknownKID
	}
	if k, ok := ring.byKID[kid]; ok {
		return k.secret, nil
	}
	if tc.reload != nil {
		if ring := tc.reload(); ring != nil {
			if k, ok := ring.byKID[kid]; ok {
				return k.secret, nil
			}
		}
	}
	return nil, errUnknownKID
}
