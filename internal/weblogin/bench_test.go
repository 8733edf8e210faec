package weblogin

import (
	"net/http"
	"testing"
)

// The per-request costs of a cookie session: reading the cookie and
// removing it before the upstream.
func BenchmarkCookieValue(b *testing.B) {
	h := http.Header{"Cookie": {"_ga=GA1.2.3; theme=dark; __Host-wx_session=eyJhbGciOiJFUzI1NiJ9.payload.signature; lang=zh"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := CookieValue(h, "__Host-wx_session"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkStripCookie(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"last", "_ga=GA1.2.3; theme=dark; __Host-wx_session=eyJhbGciOiJFUzI1NiJ9.payload.signature"},
		{"middle", "_ga=GA1.2.3; __Host-wx_session=eyJhbGciOiJFUzI1NiJ9.payload.signature; theme=dark"},
		{"absent", "_ga=GA1.2.3; theme=dark; lang=zh"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]string, 1)
			h := http.Header{"Cookie": buf}
			b.ReportAllocs()
			for b.Loop() {
				buf[0] = bc.line
				h["Cookie"] = buf
				StripCookie(h, "__Host-wx_session")
			}
		})
	}
}
