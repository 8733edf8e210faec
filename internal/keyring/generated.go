package keyring

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// Storage keys of generated signing keys. The sandbox keys are kept apart,
// so a sandbox never signs with a production key. The ring (name + "s")
// holds every key still verifying; the single key of name is what versions
// before key rotation wrote, and becomes the ring's first key.
const (
	SigningKeyName        = "wechat_auth/signing_key"
	SigningKeyNameSandbox = "wechat_auth/signing_key_sandbox"
)

// StoredKey is one generated key in Caddy's storage.
type StoredKey struct {
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"` // when a newer key took over signing
}

// StoredRing is the generated key ring in Caddy's storage, newest first.
type StoredRing struct {
	Keys []StoredKey `json:"keys"`
	// Keep is how long a retired key keeps verifying: the longest keep of
	// any config that used the ring. It never shrinks: configs sharing
	// the storage may differ in token_ttl, and tokens signed under a
	// longer one stay valid for as long after a token_ttl cut.
	Keep time.Duration `json:"keep,omitempty"`
	// TTL is the longest token_ttl of any config that used the ring. It
	// never shrinks either: a token of the ring's keys may live that long
	// on every instance, including one whose own token_ttl is shorter.
	TTL time.Duration `json:"ttl,omitempty"`
}

func (sr *StoredRing) Ring() *Ring {
	secrets := make([][]byte, len(sr.Keys))
	for i, k := range sr.Keys {
		secrets[i] = k.Key
	}
	r := New(secrets...)
	r.MaxTTL = sr.TTL
	return r
}

// Generated keeps a key ring in Caddy's storage: made once, rotated
// when the newest key is older than rotation, a retired key kept while
// tokens it signed may be valid. Every change is made under the storage
// lock after reading the ring again, so instances sharing storage agree.
type Generated struct {
	Storage  certmagic.Storage
	Name     string        // the single key of earlier versions; see ringName
	Rotation time.Duration // 0: never
	Keep     time.Duration // how long a retired key keeps verifying
	TTL      time.Duration // token_ttl of the config
}

// RingName is where the ring is kept: wechat_auth/signing_keys beside
// wechat_auth/signing_key, wechat_auth/signing_keys_sandbox beside
// wechat_auth/signing_key_sandbox.
func (g *Generated) RingName() string {
	return strings.Replace(g.Name, "signing_key", "signing_keys", 1)
}

// Due reports whether the ring needs a new key at now.
func (g *Generated) Due(sr *StoredRing, now time.Time) bool {
	return g.Rotation > 0 && now.Sub(sr.Keys[0].Created) >= g.Rotation
}

// Settled reports whether sr needs no change from g at now: no rotation
// due, and g's keep and token_ttl already counted.
func (g *Generated) Settled(sr *StoredRing, now time.Time) bool {
	return !g.Due(sr, now) && sr.Keep >= g.Keep && sr.TTL >= g.TTL
}

// Current returns the ring, making it (from the legacy key when there is
// one) or rotating it when that is due, with g's keep counted in the
// ring's.
func (g *Generated) Current(ctx context.Context, now time.Time) (*StoredRing, error) {
	sr, err := g.Read(ctx)
	if err == nil && g.Settled(sr, now) {
		return sr, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	name := g.RingName()
	if err := g.Storage.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	defer g.Storage.Unlock(context.WithoutCancel(ctx), name)
	sr, err = g.Read(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sr, err = g.First(ctx, now)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case g.Settled(sr, now):
		return sr, nil // another instance made or rotated it meanwhile
	case g.Due(sr, now):
		sr.Keys[0].Retired = now
		sr.Keys = append([]StoredKey{{Key: NewSecret(), Created: now}}, sr.Keys...)
	}
	sr.Keep = max(sr.Keep, g.Keep)
	sr.TTL = max(sr.TTL, g.TTL)
	// Retired keys go once every token they signed has expired.
	kept := sr.Keys[:1]
	for _, k := range sr.Keys[1:] {
		if now.Before(k.Retired.Add(sr.Keep)) {
			kept = append(kept, k)
		}
	}
	sr.Keys = kept
	b, err := json.Marshal(sr)
	if err != nil {
		return nil, err
	}
	if err := g.Storage.Store(ctx, name, b); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return sr, nil
}

// First makes the ring of a storage that has none: from the single key an
// earlier version generated, so its tokens stay valid, or a new key.
func (g *Generated) First(ctx context.Context, now time.Time) (*StoredRing, error) {
	key, err := LoadSigningKey(ctx, g.Storage, g.Name)
	switch {
	case err == nil:
		created := now
		if info, err := g.Storage.Stat(ctx, g.Name); err == nil && !info.Modified.IsZero() && info.Modified.Before(now) {
			created = info.Modified
		}
		return &StoredRing{Keys: []StoredKey{{Key: key, Created: created}}}, nil
	case errors.Is(err, fs.ErrNotExist):
		return &StoredRing{Keys: []StoredKey{{Key: NewSecret(), Created: now}}}, nil
	default:
		return nil, err
	}
}

// Read loads the ring from storage.
func (g *Generated) Read(ctx context.Context) (*StoredRing, error) {
	b, err := g.Storage.Load(ctx, g.RingName())
	if err != nil {
		return nil, err
	}
	var sr StoredRing
	if err := json.Unmarshal(b, &sr); err != nil || len(sr.Keys) == 0 {
		return nil, fmt.Errorf("%s in Caddy's storage is damaged: delete it to generate a new key (every token will be refused)", g.RingName())
	}
	for _, k := range sr.Keys {
		if len(k.Key) < MinSigningKey {
			return nil, fmt.Errorf("%s in Caddy's storage holds a key under %d bytes: delete it to generate a new key (every token will be refused)", g.RingName(), MinSigningKey)
		}
	}
	return &sr, nil
}

func NewSecret() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}

func LoadSigningKey(ctx context.Context, storage certmagic.Storage, name string) ([]byte, error) {
	b, err := storage.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || len(key) < MinSigningKey {
		return nil, fmt.Errorf("%s in Caddy's storage is damaged: delete it to generate a new key (every token will be refused)", name)
	}
	return key, nil
}
