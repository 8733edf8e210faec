package wechatauth

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/weblogin"
)

// benchWeb turns on web login in a benchmark's sandbox handler.
func benchWeb(h *Handler) {
	h.Web = &WebConfig{OAApp: "wxa0a0a0a0a0a0a0a0", ReturnTo: []string{"http://api.example.com/"}}
}

// webCookieFor opens a web session for the user of the token through the
// web-view handoff and returns its cookie value.
func webCookieFor(tb testing.TB, h *Handler, token string) string {
	tb.Helper()
	w := newDiscardWriter()
	r, _ := http.NewRequest(http.MethodPost, "http://api.example.com"+h.RoutePrefix+"/web/handoff", strings.NewReader(`{"return_to":"/"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
		tb.Fatalf("handoff: status %d, err %v: %s", w.status, err, w.body)
	}
	link := string(w.body)
	link = link[strings.Index(link, "http"):strings.LastIndexByte(link, '"')]
	w = newDiscardWriter()
	r, _ = http.NewRequest(http.MethodGet, link, nil)
	if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusFound {
		tb.Fatalf("handoff link: status %d, err %v: %s", w.status, err, w.body)
	}
	return sessionCookieSet(tb, w.hdr)
}

// sessionCookieSet returns the value of the session cookie an answer set
// (plain HTTP's name), and stops the test when it set none.
func sessionCookieSet(tb testing.TB, hdr http.Header) string {
	tb.Helper()
	for _, line := range hdr["Set-Cookie"] {
		if v, ok := strings.CutPrefix(line, weblogin.SessionCookieHTTP+"="); ok {
			return v[:strings.IndexByte(v, ';')]
		}
	}
	tb.Fatalf("no session cookie set: %q", hdr["Set-Cookie"])
	return ""
}

// BenchmarkProxiedRequestWebBearer is BenchmarkProxiedRequest with web
// login on: a Bearer request without cookies pays one more map lookup (is
// there a Cookie header).
func BenchmarkProxiedRequestWebBearer(b *testing.B) {
	benchProxied(b, "", benchWeb)
}

// BenchmarkProxiedRequestCookie is the hot path of a web session: a
// browser's GET with the session cookie among others and no Authorization
// header: the cookie found, opened from the cache, checked for revocation,
// removed from the Cookie header, identity set.
func BenchmarkProxiedRequestCookie(b *testing.B) {
	p := newProxiedRequest(b, "", benchWeb)
	h, r, w := p.h, p.r, p.w
	v := webCookieFor(b, h, p.auth[0][len("Bearer "):])
	delete(r.Header, "Authorization")
	line := "_ga=GA1.2.3; " + weblogin.SessionCookieHTTP + "=" + v
	cookie := []string{line}
	b.ReportAllocs()
	for b.Loop() {
		// The cookie is removed in place, as from a request's own header.
		cookie[0] = line
		r.Header["Cookie"] = cookie
		r.Header["X-Wx-Openid"] = p.spoof
		freshReplacer(r)
		w.reset()
		if err := h.ServeHTTP(w, r, okHandler{}); err != nil || w.status != http.StatusOK {
			b.Fatalf("status %d, err %v: %s", w.status, err, w.body)
		}
	}
	if got := r.Header["Cookie"]; len(got) != 1 || got[0] != "_ga=GA1.2.3" {
		b.Fatalf("the upstream would get Cookie %q", got)
	}
	// newProxiedRequest's cleanup puts Authorization back for its own
	// checks; they are about the identity set, as here.
}
