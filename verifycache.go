package wechatauth

import (
	"strings"
	"sync"
	"time"
)

// verifyCacheGeneration is how many tokens one generation of the verified
// token cache holds; the cache holds at most two generations. A token costs
// about 700 bytes there (the token string is the key;
// BenchmarkVerifyCacheMemory measures it), so the cache stays under 25 MB
// however many users there are. Past 16k tokens in use at once, some
// requests pay a full verification again (about 10 µs).
const verifyCacheGeneration = 1 << 14

// verifyCache remembers tokens whose signature and claims have been
// verified, keyed by the exact token string, so a client sending the same
// token again costs a map lookup instead of a JWT parse and an HMAC (about
// 10 µs). An entry is served only until the token's exp; revocation is not
// cached: the caller checks it on every request.
//
// Memory is bounded with two generations: new entries go into cur; when cur
// is full it becomes old and the previous old is dropped. A hit in old moves
// the entry into cur, so tokens in use survive and idle ones age out.
//
// Each tokenCodec has its own cache, so a token is only ever served to the
// codec (key, issuer, accepted audiences) that verified it.
type verifyCache struct {
	mu     sync.RWMutex
	cur    map[string]*identity
	old    map[string]*identity
	perGen int
}

func newVerifyCache(perGen int) *verifyCache {
	return &verifyCache{cur: make(map[string]*identity), perGen: perGen}
}

// get returns the identity of a verified token that has not expired at now.
func (c *verifyCache) get(raw string, now time.Time) (*identity, bool) {
	c.mu.RLock()
	id, ok := c.cur[raw]
	inOld := false
	if !ok {
		id, ok = c.old[raw]
		inOld = ok
	}
	c.mu.RUnlock()
	if !ok || !now.Before(id.Expires) {
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
func (c *verifyCache) put(raw string, id *identity) {
	raw = strings.Clone(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.perGen {
		c.old = c.cur
		c.cur = make(map[string]*identity, c.perGen)
	}
	c.cur[raw] = id
}

// len returns how many tokens the cache holds.
func (c *verifyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
