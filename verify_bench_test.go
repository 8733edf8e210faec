package wechatauth

import (
	"net/http"
	"testing"
)

// BenchmarkProxiedRequestAssertion is BenchmarkProxiedRequest with
// assertion on: the signed assertion is made once per token, so the hot
// path only adds one header.
func BenchmarkProxiedRequestAssertion(b *testing.B) {
	benchProxied(b, "/api/orders", func(h *Handler) { h.Assertion = true })
}

// BenchmarkVerifyRequest is a front proxy's forward-auth request with a
// valid token: the proxied request's check, answered 200 with the
// identity headers instead of calling the next handler.
func BenchmarkVerifyRequest(b *testing.B) {
	benchProxied(b, "/wx/verify/api/orders", nil)
}

// BenchmarkVerifyRequestAssertion is BenchmarkVerifyRequest with assertion on.
func BenchmarkVerifyRequestAssertion(b *testing.B) {
	benchProxied(b, "/wx/verify/api/orders", func(h *Handler) { h.Assertion = true })
}

// benchProxied runs miniProgramRequest, its path replaced unless path is
// empty, through a handler made with configure.
func benchProxied(b *testing.B, path string, configure func(*Handler)) {
	h := newBenchHandler(b, configure)
	tok := benchLogin(b, h, "bench-user")
	r := miniProgramRequest(tok)
	if path != "" {
		r.URL.Path = path
	}
	auth := r.Header["Authorization"]
	spoof := r.Header["X-Wx-Openid"]
	w := newDiscardWriter()
	next := okHandler{}

	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		r.Header["X-Wx-Openid"] = spoof
		w.reset()
		if err := h.ServeHTTP(w, r, next); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v", w.status, err)
		}
	}
	if got := r.Header.Get(h.HeaderOpenID); got == "spoofed" || got == "" {
		b.Fatalf("upstream would see openid %q", got)
	}
	if h.assertion != nil && r.Header.Get(h.assertion.header) == "" {
		b.Fatal("no assertion")
	}
}
