package keyring

import (
	"crypto/subtle"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// rings holds the rings of configured keys across config reloads and for
// every handler of the process: wechat_auth, wechat_api and several sites
// with the same keys share one Ring, and a reload that keeps the keys
// keeps it.
var rings = caddy.NewUsagePool()

type pooledRing struct{ *Ring }

func (pooledRing) Destruct() error { return nil }

// Hold returns the process's ring of secrets, the first of which signs,
// and the name to Release it by when the caller is done. Callers with the
// same keys in the same order get the same *Ring.
func Hold(secrets ...[]byte) (*Ring, string, error) {
	r := New(secrets...)
	name := strings.Join(r.Kids(), ",")
	val, _, err := rings.LoadOrNew(name, func() (caddy.Destructor, error) { return pooledRing{r}, nil })
	if err != nil {
		return nil, "", err
	}
	pooled := val.(pooledRing).Ring
	// A kid names a key but does not prove it: share only the same keys.
	for i, k := range pooled.Keys {
		if subtle.ConstantTimeCompare(k.Secret, r.Keys[i].Secret) != 1 {
			rings.Delete(name)
			return r, "", nil
		}
	}
	return pooled, name, nil
}

// Release gives back a hold of Hold; the ring goes when no one holds it.
func Release(name string) {
	if name != "" {
		rings.Delete(name)
	}
}
