package token

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/identity"
)

// verifyCacheGeneration is how many tokens one generation of the verified
// token cache holds; the cache holds at most two generations. A token costs
// about 780 bytes there (the token string is the key;
// BenchmarkVerifyCacheMemory measures it), so the cache stays under 26 MB
// however many users there are. Past 16k tokens in use at once, some
// requests pay a full verification again (about 10 µs).
const verifyCacheGeneration = 1 << 14

// verifyCache remembers tokens whose signature and claims have been
// verified, keyed by the exact token string, so a client sending the same
// token again costs a map lookup instead of a JWT parse and an HMAC (about
// 10 µs). An entry is served only until the token's exp, and only while
// the key ring it was verified under is still in force (Codec checks
// that with one pointer compare, so a token whose key left the ring is
// verified again and refused); revocation is not cached: the caller checks
// it on every request.
//
// Memory is bounded with two generations: new entries go into cur; when cur
// is full it becomes old and the previous old is dropped. A hit in old moves
// the entry into cur, so tokens in use survive and idle ones age out.
//
// Reads take no lock: get runs on every proxied request on every core, and
// the reader count of an RWMutex is one cache line all cores write to.
// Writers (a token seen for the first time) are serialised by mu.
//
// Each Codec has its own cache, so a token is only ever served to the
// codec (key, issuer, accepted audiences) that verified it.
type verifyCache struct {
	cur, old atomic.Pointer[sync.Map] // token string → *identity.Identity

	mu     sync.Mutex // serialises put
	curN   int        // entries in cur
	oldN   int        // entries in old
	perGen int
}

func newVerifyCache(perGen int) *verifyCache {
	c := &verifyCache{perGen: perGen}
	c.cur.Store(new(sync.Map))
	return c
}

// get returns the identity of a verified token that has not expired at now.
func (c *verifyCache) get(raw string, now time.Time) (*identity.Identity, bool) {
	v, ok := c.cur.Load().Load(raw)
	inOld := false
	if !ok {
		if old := c.old.Load(); old != nil {
			v, ok = old.Load(raw)
			inOld = ok
		}
	}
	if !ok {
		return nil, false
	}
	id := v.(*identity.Identity)
	if !now.Before(id.Expires) {
		return nil, false
	}
	if inOld {
		c.put(raw, id)
	}
	return id, true
}

// put remembers a verified token. raw must be the exact string whose
// signature was checked. It is copied, so the cache does not keep the
// request's header string alive.
func (c *verifyCache) put(raw string, id *identity.Identity) {
	raw = strings.Clone(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.curN >= c.perGen {
		c.old.Store(c.cur.Load())
		c.cur.Store(new(sync.Map))
		c.oldN, c.curN = c.curN, 0
	}
	if _, loaded := c.cur.Load().Swap(raw, id); !loaded {
		c.curN++
	}
}

// len returns how many tokens the cache holds (a token moved from old to
// cur is counted in both until old is dropped).
func (c *verifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.curN + c.oldN
}
