package redisstore

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
)

// HKDF info strings of the layout before key rotation, which derived the
// session_key encryption key and the key namespace from the signing key.
// They are kept to read that layout (legacy.go).
const (
	hkdfSessionKey = "wechat_auth session_key v1"
	hkdfNamespace  = "wechat_auth redis namespace v1"
)

// Namespace named the keys of one signing key in Redis before key
// rotation. It reveals nothing about the key.
func Namespace(signingKey []byte) string {
	ns, err := hkdf.Key(sha256.New, signingKey, nil, hkdfNamespace, 6)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot give
	}
	return hex.EncodeToString(ns)
}

// redisSession is a session as kept in Redis.
type redisSession struct {
	AppID   string `json:"appid"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid,omitempty"`
	Created int64  `json:"created"` // Unix ms
	Expires int64  `json:"expires"` // Unix ms
	// Nonce and AES-GCM ciphertext of the session_key, bound to the
	// session's sid and identity so it cannot be moved to another record.
	SealedKey []byte `json:"sealed_key"`
}

func sealAAD(sid, appid, openid, unionid string) []byte {
	return []byte("wechat_auth session v1\x00" + sid + "\x00" + appid + "\x00" + openid + "\x00" + unionid)
}

func (r *Store) seal(s *session.Session, expires time.Time) ([]byte, error) {
	nonce := make([]byte, r.aead.NonceSize(), r.aead.NonceSize()+len(s.SessionKey)+r.aead.Overhead())
	rand.Read(nonce)
	sealed := r.aead.Seal(nonce, nonce, []byte(s.SessionKey), sealAAD(s.SID, s.AppID, s.OpenID, s.UnionID))
	return json.Marshal(redisSession{
		AppID:     s.AppID,
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
		Created:   s.Created.UnixMilli(),
		Expires:   expires.UnixMilli(),
		SealedKey: sealed,
	})
}

var errDamagedSession = errors.New("session record in Redis is damaged or sealed under another key")

func (r *Store) open(sid string, b []byte) (*session.Session, time.Time, error) {
	return openSealed(r.aead, sid, b)
}

// openSealed opens a session record sealed with aead.
func openSealed(aead cipher.AEAD, sid string, b []byte) (*session.Session, time.Time, error) {
	var rs redisSession
	if err := json.Unmarshal(b, &rs); err != nil || len(rs.SealedKey) < aead.NonceSize() {
		return nil, time.Time{}, errDamagedSession
	}
	n := aead.NonceSize()
	key, err := aead.Open(nil, rs.SealedKey[:n], rs.SealedKey[n:], sealAAD(sid, rs.AppID, rs.OpenID, rs.UnionID))
	if err != nil {
		return nil, time.Time{}, errDamagedSession
	}
	return &session.Session{
		SID:        sid,
		AppID:      rs.AppID,
		OpenID:     rs.OpenID,
		UnionID:    rs.UnionID,
		SessionKey: string(key),
		Created:    time.UnixMilli(rs.Created),
	}, time.UnixMilli(rs.Expires), nil
}
