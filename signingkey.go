package wechatauth

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
	signingKeyName        = "wechat_auth/signing_key"
	signingKeyNameSandbox = "wechat_auth/signing_key_sandbox"
)

// storedKey is one generated key in Caddy's storage.
type storedKey struct {
	Key     []byte    `json:"key"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired,omitzero"` // when a newer key took over signing
}

// storedRing is the generated key ring in Caddy's storage, newest first.
type storedRing struct {
	Keys []storedKey `json:"keys"`
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

func (sr *storedRing) keyRing() *keyRing {
	secrets := make([][]byte, len(sr.Keys))
	for i, k := range sr.Keys {
		secrets[i] = k.Key
	}
	r := newKeyRing(secrets...)
	r.maxTTL = sr.TTL
	return r
}

// generatedKeys keeps a key ring in Caddy's storage: made once, rotated
// when the newest key is older than rotation, a retired key kept while
// tokens it signed may be valid. Every change is made under the storage
// lock after reading the ring again, so instances sharing storage agree.
type generatedKeys struct {
	storage  certmagic.Storage
	name     string        // the single key of earlier versions; see ringName
	rotation time.Duration // 0: never
	keep     time.Duration // how long a retired key keeps verifying
	ttl      time.Duration // token_ttl of the config
}

// ringName is where the ring is kept: wechat_auth/signing_keys beside
// wechat_auth/signing_key, wechat_auth/signing_keys_sandbox beside
// wechat_auth/signing_key_sandbox.
func (g *generatedKeys) ringName() string {
	return strings.Replace(g.name, "signing_key", "signing_keys", 1)
}

// due reports whether the ring needs a new key at now.
func (g *generatedKeys) due(sr *storedRing, now time.Time) bool {
	return g.rotation > 0 && now.Sub(sr.Keys[0].Created) >= g.rotation
}

// settled reports whether sr needs no change from g at now: no rotation
// due, and g's keep and token_ttl already counted.
func (g *generatedKeys) settled(sr *storedRing, now time.Time) bool {
	return !g.due(sr, now) && sr.Keep >= g.keep && sr.TTL >= g.ttl
}

// current returns the ring, making it (from the legacy key when there is
// one) or rotating it when that is due, with g's keep counted in the
// ring's.
func (g *generatedKeys) current(ctx context.Context, now time.Time) (*storedRing, error) {
	sr, err := g.read(ctx)
	if err == nil && g.settled(sr, now) {
		return sr, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	name := g.ringName()
	if err := g.storage.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	defer g.storage.Unlock(context.WithoutCancel(ctx), name)
	sr, err = g.read(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sr, err = g.first(ctx, now)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case g.settled(sr, now):
		return sr, nil // another instance made or rotated it meanwhile
	case g.due(sr, now):
		sr.Keys[0].Retired = now
		sr.Keys = append([]storedKey{{Key: newSecret(), Created: now}}, sr.Keys...)
	}
	sr.Keep = max(sr.Keep, g.keep)
	sr.TTL = max(sr.TTL, g.ttl)
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
	if err := g.storage.Store(ctx, name, b); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return sr, nil
}

// first makes the ring of a storage that has none: from the single key an
// earlier version generated, so its tokens stay valid, or a new key.
func (g *generatedKeys) first(ctx context.Context, now time.Time) (*storedRing, error) {
	key, err := loadSigningKey(ctx, g.storage, g.name)
	switch {
	case err == nil:
		created := now
		if info, err := g.storage.Stat(ctx, g.name); err == nil && !info.Modified.IsZero() && info.Modified.Before(now) {
			created = info.Modified
		}
		return &storedRing{Keys: []storedKey{{Key: key, Created: created}}}, nil
	case errors.Is(err, fs.ErrNotExist):
		return &storedRing{Keys: []storedKey{{Key: newSecret(), Created: now}}}, nil
	default:
		return nil, err
	}
}

// read loads the ring from storage.
func (g *generatedKeys) read(ctx context.Context) (*storedRing, error) {
	b, err := g.storage.Load(ctx, g.ringName())
	if err != nil {
		return nil, err
	}
	var sr storedRing
	if err := json.Unmarshal(b, &sr); err != nil || len(sr.Keys) == 0 {
		return nil, fmt.Errorf("%s in Caddy's storage is damaged: delete it to generate a new key (every token will be refused)", g.ringName())
	}
	for _, k := range sr.Keys {
		if len(k.Key) < minSigningKey {
			return nil, fmt.Errorf("%s in Caddy's storage holds a key under %d bytes: delete it to generate a new key (every token will be refused)", g.ringName(), minSigningKey)
		}
	}
	return &sr, nil
}

func newSecret() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}

func loadSigningKey(ctx context.Context, storage certmagic.Storage, name string) ([]byte, error) {
	b, err := storage.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || len(key) < minSigningKey {
		return nil, fmt.Errorf("%s in Caddy's storage is damaged: delete it to generate a new key (every token will be refused)", name)
	}
	return key, nil
}
