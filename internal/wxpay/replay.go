package wxpay

import (
	"crypto/sha256"
	"sync"
	"time"
)

// AnswerLog remembers the signatures of the answers taken lately, so that
// one genuine answer of WeChat Pay cannot be passed off again, by whoever
// sits on the way to it, as the answer to another call: a signature covers
// the answer's timestamp, nonce and body, not the request it answers, and
// verifies for MaxSkew either side of its timestamp. Every signature is
// kept for at least 2×MaxSkew, the longest it verifies after it first
// could; two generations of digests, swapped every 2×MaxSkew, bound the
// memory by the answers of twice that. The zero value is ready.
type AnswerLog struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	since     time.Time
}

// First records an answer's Wechatpay-Signature, taken at now, and
// reports whether it was not taken before.
func (l *AnswerLog) First(signature string, now time.Time) bool {
	sum := sha256.Sum256([]byte(signature))
	k := [16]byte(sum[:16])
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || now.Sub(l.since) >= 2*MaxSkew {
		l.prev, l.cur, l.since = l.cur, make(map[[16]byte]struct{}), now
	}
	if _, ok := l.cur[k]; ok {
		return false
	}
	if _, ok := l.prev[k]; ok {
		return false
	}
	l.cur[k] = struct{}{}
	return true
}
