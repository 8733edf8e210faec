package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/redis/go-redis/v9"
)

// The data key of a Redis deployment seals the session_keys and names the
// key namespace. It is random, made once, and kept in Redis wrapped under
// each signing key (HKDF of the signing key, AES-256-GCM), one hash field
// per kid: any instance holding one of the keys finds it, rotating the
// signing key loses nothing, and a Redis dump alone opens nothing.
const (
	dataKeysKey  = "wechat_auth:datakeys"      // hash: kid → wrapped data key
	dataKeysLock = "wechat_auth:datakeys:lock" // held while the first data key is made
	hkdfWrapKey  = "wechat_auth data key wrap v1"
)

// dataKey is what the wrapped value holds.
type dataKey struct {
	NS  string `json:"ns"`  // the key namespace: wechat_auth:<ns>:…
	Key []byte `json:"key"` // AES-256 key of the session_keys
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrapAEAD is the AEAD that wraps the data key under one signing key.
func wrapAEAD(secret []byte) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret, nil, hkdfWrapKey, 32)
	if err != nil {
		return nil, err
	}
	return newAEAD(k)
}

func wrapAAD(kid string) []byte { return []byte("wechat_auth data key v1\x00" + kid) }

func wrapDataKey(k *keyring.Key, dk *dataKey) (string, error) {
	aead, err := wrapAEAD(k.Secret)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(dk)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, wrapAAD(k.Kid))), nil
}

func unwrapDataKey(k *keyring.Key, wrapped string) (*dataKey, error) {
	aead, err := wrapAEAD(k.Secret)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil || len(b) < aead.NonceSize() {
		return nil, errDamagedDataKey
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, b[:n], b[n:], wrapAAD(k.Kid))
	if err != nil {
		return nil, errDamagedDataKey
	}
	var dk dataKey
	if json.Unmarshal(plain, &dk) != nil || len(dk.Key) != 32 || dk.NS == "" {
		return nil, errDamagedDataKey
	}
	return &dk, nil
}

var errDamagedDataKey = errors.New("the data key in Redis is damaged or wrapped under another key")

// findDataKey looks the data key up under every key of ring, and returns
// it (nil when none of the keys has one) with the keys it is not yet
// wrapped under.
func findDataKey(ctx context.Context, c redis.Cmdable, ring *keyring.Ring) (*dataKey, []*keyring.Key, error) {
	vals, err := c.HMGet(ctx, dataKeysKey, ring.Kids()...).Result()
	if err != nil {
		return nil, nil, err
	}
	var found *dataKey
	var missing []*keyring.Key
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			missing = append(missing, ring.Keys[i])
			continue
		}
		if found != nil {
			continue
		}
		dk, err := unwrapDataKey(ring.Keys[i], s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (kid %s)", err, ring.Keys[i].Kid)
		}
		found = dk
	}
	return found, missing, nil
}

// loadDataKey returns the data key of the deployment that ring's keys
// belong to, making it when none of them has one (made is then true), and
// wraps it under every key of ring. Making it is done under a lock in
// Redis after looking again, so instances starting at once agree.
func loadDataKey(ctx context.Context, c redis.Cmdable, ring *keyring.Ring) (dk *dataKey, made bool, err error) {
	dk, missing, err := findDataKey(ctx, c, ring)
	if err != nil {
		return nil, false, err
	}
	if dk == nil {
		unlock, err := lockDataKeys(ctx, c)
		if err != nil {
			return nil, false, err
		}
		defer unlock()
		if dk, missing, err = findDataKey(ctx, c, ring); err != nil {
			return nil, false, err
		}
		if dk == nil {
			ns := make([]byte, 6)
			rand.Read(ns)
			dk = &dataKey{NS: hex.EncodeToString(ns), Key: keyring.NewSecret()}
			missing = ring.Keys
			made = true
		}
	}
	return dk, made, storeWrapped(ctx, c, dk, missing)
}

// storeWrapped wraps dk under each of keys.
func storeWrapped(ctx context.Context, c redis.Cmdable, dk *dataKey, keys []*keyring.Key) error {
	if len(keys) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		w, err := wrapDataKey(k, dk)
		if err != nil {
			return err
		}
		fields = append(fields, k.Kid, w)
	}
	return c.HSet(ctx, dataKeysKey, fields...).Err()
}

// lockDataKeys takes the lock of the data keys, waiting while another
// instance holds it. The lock expires by itself should its holder die.
func lockDataKeys(ctx context.Context, c redis.Cmdable) (unlock func(), err error) {
	token := session.NewID()
	for {
		ok, err := c.SetNX(ctx, dataKeysLock, token, 10*time.Second).Result()
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), OpTimeout)
				defer cancel()
				if c.Get(ctx, dataKeysLock).Val() == token {
					c.Del(ctx, dataKeysLock)
				}
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("another instance holds %s: %w", dataKeysLock, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// addSigningKeys wraps the data key under the keys of ring it is not
// wrapped under yet, and remembers ring for keepDataKey.
func (r *Store) AddSigningKeys(ctx context.Context, ring *keyring.Ring) error {
	r.mu.Lock()
	r.ring = ring
	r.mu.Unlock()
	return r.keepDataKey(ctx)
}

// sharesKey reports whether the store knows one of ring's signing keys:
// then both belong to one deployment, before and after a rotation.
func (r *Store) SharesKey(ring *keyring.Ring) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for kid := range ring.ByKID {
		if r.ring.ByKID[kid] != nil {
			return true
		}
	}
	return false
}

// keepDataKey writes the data key back under every signing key that lacks
// it: after a new key, and after Redis restarted without its data (sync
// calls it then), so that an instance starting afterwards finds it.
func (r *Store) keepDataKey(ctx context.Context) error {
	r.mu.Lock()
	ring := r.ring
	r.mu.Unlock()
	found, missing, err := findDataKey(ctx, r.client, ring)
	if err != nil {
		return err
	}
	if found != nil && found.NS != r.dataKey.NS {
		r.log.Error("another data key is in Redis for these signing keys (Redis lost its data and an instance started before this one wrote its key back): sessions of the two are apart until they restart; turn on Redis persistence")
		return nil
	}
	return storeWrapped(ctx, r.client, r.dataKey, missing)
}
