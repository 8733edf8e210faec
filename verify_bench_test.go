package wechatauth

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// BenchmarkProxiedRequestAssertion is BenchmarkProxiedRequest with
// assertion on: the signed assertion is made once per token, so the hot
// path only adds one header.
func BenchmarkProxiedRequestAssertion(b *testing.B) {
	benchProxied(b, "", func(h *Handler) { h.Assertion = true })
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

// BenchmarkProxiedRatios runs the proxied request with assertion off, with
// it on, and the verify request, in alternating rounds of 2000 requests in
// one process, so load from elsewhere on the machine hits all three alike,
// and reports the median of the per-round ratios: assertion on/off and
// verify/proxied.
func BenchmarkProxiedRatios(b *testing.B) {
	off := proxiedRunner(b, "", nil)
	on := proxiedRunner(b, "", func(h *Handler) { h.Assertion = true })
	verify := proxiedRunner(b, "/wx/verify/api/orders", nil)
	timed := func(run func()) time.Duration {
		start := time.Now()
		for range 2000 {
			run()
		}
		return time.Since(start)
	}
	var onOff, verifyProxied []float64
	for b.Loop() {
		tOff, tOn, tVerify := timed(off), timed(on), timed(verify)
		onOff = append(onOff, float64(tOn)/float64(tOff))
		verifyProxied = append(verifyProxied, float64(tVerify)/float64(tOff))
	}
	b.ReportMetric(median(onOff), "assertion-on/off")
	b.ReportMetric(median(verifyProxied), "verify/proxied")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchProxied benchmarks miniProgramRequest, its path replaced unless
// path is empty, through a handler made with configure. The loop is written
// out rather than calling a runner, so the benchmark measures the handler
// and not a closure call.
func benchProxied(b *testing.B, path string, configure func(*Handler)) {
	p := newProxiedRequest(b, path, configure)
	h, r, w, next, auth, spoof := p.h, p.r, p.w, okHandler{}, p.auth, p.spoof
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Authorization"] = auth
		r.Header["X-Wx-Openid"] = spoof
		freshReplacer(r)
		w.reset()
		if err := h.ServeHTTP(w, r, next); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v", w.status, err)
		}
	}
}

// proxiedRequest is one miniProgramRequest (path replaced unless empty)
// through a handler made with configure, sent again and again; at the
// end of the benchmark it must have reached the next handler with the
// verified identity.
type proxiedRequest struct {
	h           *Handler
	r           *http.Request
	w           *discardWriter
	auth, spoof []string
}

func newProxiedRequest(b *testing.B, path string, configure func(*Handler)) *proxiedRequest {
	h := newBenchHandler(b, configure)
	tok := benchLogin(b, h, "bench-user")
	r := miniProgramRequest(tok)
	if path != "" {
		r.URL.Path = path
	}
	p := &proxiedRequest{h: h, r: r, w: newDiscardWriter(), auth: r.Header["Authorization"], spoof: r.Header["X-Wx-Openid"]}
	b.Cleanup(func() {
		if got := r.Header.Get(h.HeaderOpenID); got == "spoofed" || got == "" {
			b.Errorf("upstream would see openid %q", got)
		}
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		if got := repl.ReplaceAll("{http.auth.user.id}", ""); got != r.Header.Get(h.HeaderOpenID) {
			b.Errorf("{http.auth.user.id} is %q", got)
		}
		if h.assertion != nil && r.Header.Get(h.assertion.Header()) == "" {
			b.Error("no assertion")
		}
	})
	return p
}

// proxiedRunner returns a function that sends one request as
// benchProxied does and requires a 200.
func proxiedRunner(b *testing.B, path string, configure func(*Handler)) func() {
	p := newProxiedRequest(b, path, configure)
	next := okHandler{}
	return func() {
		p.r.Header["Authorization"] = p.auth
		p.r.Header["X-Wx-Openid"] = p.spoof
		freshReplacer(p.r)
		p.w.reset()
		if err := p.h.ServeHTTP(p.w, p.r, next); err != nil || p.w.status != http.StatusOK {
			b.Fatalf("status %d, err %v", p.w.status, err)
		}
	}
}
