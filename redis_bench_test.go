package wechatauth

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/redistest"
)

// BenchmarkLoginRedis is BenchmarkLogin with the sessions in a real
// redis-server: what a login costs this process with store redis.
func BenchmarkLoginRedis(b *testing.B) {
	srv := redistest.Start(b)
	h := newBenchHandler(b, func(h *Handler) { h.Store = srv.URL })
	w := newDiscardWriter()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		r := newFormRequest(h.RoutePrefix+"/login", "code=bench-"+strconv.Itoa(i))
		w.reset()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", w.status, err, w.body)
		}
	}
}
