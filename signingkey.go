package wechatauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"

	"github.com/caddyserver/certmagic"
)

// Storage keys of generated signing keys. The sandbox key is kept apart, so
// a sandbox never signs with the production key.
const (
	signingKeyName        = "wechat_auth/signing_key"
	signingKeyNameSandbox = "wechat_auth/signing_key_sandbox"
)

// storedSigningKey returns the signing key kept in Caddy's storage under
// name, generating it once. It is generated under the storage lock and read
// again once the lock is held, so instances sharing storage that start at
// the same time agree on one key.
func storedSigningKey(ctx context.Context, storage certmagic.Storage, name string) ([]byte, error) {
	if key, err := loadSigningKey(ctx, storage, name); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := storage.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	defer storage.Unlock(context.WithoutCancel(ctx), name)
	if key, err := loadSigningKey(ctx, storage, name); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := storage.Store(ctx, name, []byte(base64.StdEncoding.EncodeToString(key))); err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	return key, nil
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
