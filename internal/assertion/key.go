package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/caddy-wechat/wechatauth/internal/stored"
	"github.com/caddyserver/certmagic"
)

// Storage keys of generated assertion keys. The sandbox key is kept apart,
// so an upstream that trusts the production key refuses sandbox assertions.
const (
	KeyName        = "wechat_auth/assertion_key.pem"
	KeyNameSandbox = "wechat_auth/assertion_key_sandbox.pem"
)

// StoredKey returns the ES256 key kept in Caddy's storage under
// name (PKCS#8 PEM), generating it once, so instances sharing storage
// publish one key.
func StoredKey(ctx context.Context, storage certmagic.Storage, name string) (*ecdsa.PrivateKey, error) {
	parse := func(b []byte) (*ecdsa.PrivateKey, error) {
		key, err := ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s in Caddy's storage is damaged (%v): delete it to generate a new key (upstreams then fetch jwks.json again)", name, err)
		}
		return key, nil
	}
	return stored.Once(ctx, storage, name, parse, func() (*ecdsa.PrivateKey, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	})
}
