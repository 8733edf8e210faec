package wechatauth

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/session"
)

// BenchmarkProxiedRequestWithUserCutOffs is BenchmarkProxiedRequest while
// 10000 other users are revoked: the one lock-free lookup the cut-offs
// add once any exist.
func BenchmarkProxiedRequestWithUserCutOffs(b *testing.B) {
	h := newBenchHandler(b, nil)
	tok := benchLogin(b, h, "bench-user")
	cut := time.Now().Add(time.Hour)
	for i := range 10000 {
		h.users.Merge(&session.UserRecord{AppID: sandboxAppID, OpenID: "oRevoked" + strconv.Itoa(i), RevokedBefore: cut, Keep: cut, Changed: time.Now()})
	}
	r := miniProgramRequest(tok)
	auth := r.Header["Authorization"]
	w := newDiscardWriter()
	next := okHandler{}

	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		w.reset()
		if err := h.ServeHTTP(w, r, next); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v", w.status, err)
		}
	}
}
