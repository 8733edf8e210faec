package wechatauth

import (
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// privateAnswer passes on an upstream's answer to which this module added
// a Set-Cookie (a renewed or a cleared session cookie), making it one no
// shared cache may keep: a cache that stores answers with Set-Cookie
// (RFC 9111 lets it) would hand one browser's session to the next, or
// log everyone out. When the headers go out, Cache-Control says
// "private", with the upstream's other directives, unless it already
// says "no-store" or "private".
type privateAnswer struct {
	*caddyhttp.ResponseWriterWrapper
	sealed bool
}

func newPrivateAnswer(w http.ResponseWriter) *privateAnswer {
	return &privateAnswer{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

// seal rewrites Cache-Control once, before the final headers are sent.
func (p *privateAnswer) seal() {
	if !p.sealed {
		p.sealed = true
		keepPrivate(p.Header())
	}
}

func (p *privateAnswer) WriteHeader(code int) {
	if code >= 200 {
		p.seal()
	}
	p.ResponseWriterWrapper.WriteHeader(code)
}

func (p *privateAnswer) Write(b []byte) (int, error) {
	p.seal()
	return p.ResponseWriterWrapper.Write(b)
}

func (p *privateAnswer) ReadFrom(r io.Reader) (int64, error) {
	p.seal()
	return p.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError and Flush send the headers too, so they seal first.
func (p *privateAnswer) FlushError() error {
	p.seal()
	return http.NewResponseController(p.ResponseWriter).Flush()
}

func (p *privateAnswer) Flush() { _ = p.FlushError() }

// keepPrivate makes h's Cache-Control forbid shared caches to store the
// answer: "private" first, then the other directives but "public",
// "s-maxage" and those with a quoted value (a field list of private or
// no-cache, which "private" covers). An answer already marked "no-store"
// or "private" (for all of it, not a list of fields) is left as it is.
func keepPrivate(h http.Header) {
	kept := []string{"private"}
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				return
			case "private":
				if d == name {
					return
				}
			case "public", "s-maxage", "":
			default:
				if !strings.Contains(d, `"`) {
					kept = append(kept, d)
				}
			}
		}
	}
	h["Cache-Control"] = []string{strings.Join(kept, ", ")}
}
