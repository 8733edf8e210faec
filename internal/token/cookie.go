package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/keyring"
)

// A session cookie holds a token of the codec sealed with AES-256-GCM, so
// the browser (and anyone reading its cookie jar) learns nothing of the
// user: the token itself names the openid. The cookie is
// "<kid>.<base64url(nonce | ciphertext)>"; its key is derived from the
// signing key the kid names, so a key rotation rotates it too and a ring
// without the key refuses the cookie.

// cookieKeyInfo is the HMAC message that derives a cookie key from a
// signing key: the two keys never coincide.
const cookieKeyInfo = "wechat_auth session cookie v1"

// maxCookie bounds a sealed cookie value; a sealed token is about 500
// characters.
const maxCookie = 2048

func cookieAEAD(k *keyring.Key) cipher.AEAD {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte(cookieKeyInfo))
	block, _ := aes.NewCipher(m.Sum(nil)) // 32 bytes: never fails
	aead, _ := cipher.NewGCM(block)
	return aead
}

// SealCookie returns the session cookie value carrying tok, sealed under
// the ring's signing key.
func (tc *Codec) SealCookie(tok string) (string, error) {
	k := tc.ring.Load().Signer()
	aead := cookieAEAD(k)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(tok)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, []byte(tok), []byte(k.Kid))
	return k.Kid + "." + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// OpenCookieCached is VerifyCached for a session cookie: a value opened
// and verified before, not expired at now and under the ring in force, is
// answered from a cache of its own (a cookie value is never accepted as a
// Bearer token, nor a token as a cookie). Revocation is the caller's to
// check, on every request.
func (tc *Codec) OpenCookieCached(v string, now time.Time) (*identity.Identity, error) {
	if id, ok := tc.cookies.get(v, now); ok && id.Ring == tc.ring.Load() {
		return id, nil
	}
	tok, err := tc.openCookie(v)
	if err != nil {
		return nil, err
	}
	id, err := tc.Verify(tok)
	if err != nil {
		return nil, err
	}
	if !now.Before(id.Expires) {
		return nil, ErrBadToken
	}
	tc.cookies.put(v, id)
	return id, nil
}

// openCookie returns the token a cookie value seals.
func (tc *Codec) openCookie(v string) (string, error) {
	if len(v) > maxCookie {
		return "", ErrBadToken
	}
	kid, body, ok := strings.Cut(v, ".")
	if !ok {
		return "", ErrBadToken
	}
	k, ok := tc.ring.Load().ByKID[kid]
	if !ok && tc.reload != nil {
		if ring := tc.reload(); ring != nil {
			k, ok = ring.ByKID[kid]
		}
	}
	if !ok {
		return "", ErrBadToken
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return "", ErrBadToken
	}
	aead := cookieAEAD(k)
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", ErrBadToken
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(kid))
	if err != nil {
		return "", ErrBadToken
	}
	return string(plain), nil
}
