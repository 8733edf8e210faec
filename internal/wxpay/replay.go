package wxpay

import (
	"crypto/sha256"
	"sync"
	"time"
)

// AnswerLog remembers the answers taken lately, so that one genuine
// answer of WeChat Pay cannot be passed off again, by whoever sits on the
// way to it, as the answer to another call: a signature covers the
// answer's timestamp, nonce and body, not the request it answers, and
// verifies for MaxSkew either side of its timestamp. An answer is known
// by what its signature covers, not by the signature's text, whose
// base64 has spellings that decode alike. Every answer is kept for at
// least 2×MaxSkew, the longest it verifies after it first could; two
// generations of digests, swapped every 2×MaxSkew, bound the memory by the
// answers of twice that. The zero value is ready.
//
// It catches an answer taken twice, not one withheld from its own call
// and handed to another: the caller checks what it can of the answer
// against its call.
type AnswerLog struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	since     time.Time
}

// First records an answer (its Wechatpay-Timestamp, Wechatpay-Nonce and
// body), taken at now, and reports whether it was not taken before.
func (l *AnswerLog) First(timestamp, nonce string, body []byte, now time.Time) bool {
	h := sha256.New()
	h.Write([]byte(timestamp + "\n" + nonce + "\n"))
	h.Write(body)
	k := [16]byte(h.Sum(nil))
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
