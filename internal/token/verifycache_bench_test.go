package token

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkVerifyCacheMemory reports the heap the verified token cache
// holds per token when full (two generations), tokens of WeChat's real
// sizes (with a unionid) included.
func BenchmarkVerifyCacheMemory(b *testing.B) {
	tc := New([]byte("bench-signing-key-0123456789abcdef"), IssuerProduction, 2*time.Hour, map[string]string{"wx4f4bc4dec97d474b": ""})
	n := 2 * verifyCacheGeneration
	tokens := make([]string, n)
	now := time.Now()
	for i := range tokens {
		// A subject of WeChat's real sizes, as the sessions of logins are.
		n := fmt.Sprintf("%08d", i)
		var sid [16]byte
		rand.Read(sid[:])
		s := Subject{SID: base64.RawURLEncoding.EncodeToString(sid[:]), AppID: "wx4f4bc4dec97d474b", OpenID: "oGZUI0egBJY1zhBYw2Kh" + n, UnionID: "ocMvos6NjeKLIBqg5Mr9" + n}
		tok, _, err := tc.Issue(s, now)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	for b.Loop() {
		tc.verified = newVerifyCache(verifyCacheGeneration)
		before := heapInUse()
		for _, tok := range tokens {
			if _, err := tc.VerifyCached(tok, now); err != nil {
				b.Fatal(err)
			}
		}
		after := heapInUse()
		held := tc.verified.len()
		b.ReportMetric(float64(after-before)/float64(held), "bytes/token")
		b.ReportMetric(float64(held), "tokens")
		b.ReportMetric(float64(len(tokens[0])), "token_len")
	}
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
