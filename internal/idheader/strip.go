// Package idheader keeps clients from claiming an identity: it strips every
// header (and Connection token, and trailer) that names one, matched as a
// CGI-style backend would read it, and knows the names a verify answer
// tells a front proxy to remove.
package idheader

import (
	"io"
	"net/http"
	"strings"
)

// Source is set on every verified request, as WeChat Cloud Hosting
// does: apps written for it treat a request as coming through WeChat when it
// is present. Its value says where the credential came from: a token the
// mini program sent (wx_client), or a web session's cookie (wx_web).
const (
	Source       = "X-Wx-Source"
	SourceClient = "wx_client"
	SourceWeb    = "wx_web"
)

// Strip removes every way a client could claim an identity: all
// x-wx-* headers and the configured identity headers, matched
// case-insensitively with '_', '.' and the other aliases of '-' read as
// '-' (CGI-style backends read X_WX_OPENID or X~WX~OPENID as X-WX-OPENID,
// and Caddy admits X.WX.OPENID with expected_dot_headers); the same names
// in Connection, which would
// make reverse_proxy drop the verified identity as hop-by-hop; and the same
// names as request trailers.
func (s *Stripper) Strip(r *http.Request) {
	hdr := r.Header
	for name := range hdr {
		switch {
		case HasIdentityPrefix(name) || len(s.configured) > 0 && s.isConfiguredIdentity(name): // isIdentityHeader, inlined
			delete(hdr, name)
		case name == "Connection":
			if kept, changed := s.connectionWithoutIdentity(hdr[name]); changed {
				hdr[name] = kept
			}
		}
	}
	if len(r.Trailer) > 0 {
		s.stripTrailers(r)
	}
}

// connectionWithoutIdentity returns the Connection values without the
// tokens that name identity headers, and whether there were any. It
// allocates only then.
func (s *Stripper) connectionWithoutIdentity(vals []string) ([]string, bool) {
	named := false
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			if s.isIdentityHeader(strings.TrimSpace(tok)) {
				named = true
			}
		}
	}
	if !named {
		return vals, false
	}
	kept := make([]string, 0, len(vals))
	for _, v := range vals {
		var toks []string
		for tok := range strings.SplitSeq(v, ",") {
			if t := strings.TrimSpace(tok); t != "" && !s.isIdentityHeader(t) {
				toks = append(toks, t)
			}
		}
		if len(toks) > 0 {
			kept = append(kept, strings.Join(toks, ", "))
		}
	}
	return kept, true
}

// stripTrailers removes identity names from the trailers a client
// declared. net/http fills in their values only when the body has been read
// to its end, into the same map, so the body is wrapped to remove them again
// at that moment, before reverse_proxy copies the trailers upstream.
func (s *Stripper) stripTrailers(r *http.Request) {
	s.deleteIdentity(r.Trailer)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, s: s, trailer: r.Trailer}
	}
}

// deleteIdentity deletes the identity headers of hdr.
func (s *Stripper) deleteIdentity(hdr http.Header) {
	for name := range hdr {
		if s.isIdentityHeader(name) {
			delete(hdr, name)
		}
	}
}

// trailerGuard is a request body that removes identity trailers once the
// body has been read to its end.
type trailerGuard struct {
	io.ReadCloser
	s       *Stripper
	trailer http.Header
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		g.s.deleteIdentity(g.trailer)
	}
	return n, err
}

// isIdentityHeader reports whether a client's header name claims an
// identity. It runs for every header of every request, so the common
// answer (no, and not under x-wx-) costs a byte comparison.
func (s *Stripper) isIdentityHeader(name string) bool {
	return HasIdentityPrefix(name) || len(s.configured) > 0 && s.isConfiguredIdentity(name)
}

// HasIdentityPrefix reports whether name, folded, starts with "x-wx-". The
// bytes are tested one by one: c|0x20 is 'x' for 'X' and 'x' only.
func HasIdentityPrefix(name string) bool {
	return len(name) >= 5 && name[0]|0x20 == 'x' && isFoldedDash(name[1]) &&
		name[2]|0x20 == 'w' && name[3]|0x20 == 'x' && isFoldedDash(name[4])
}

// isFoldedDash reports whether c folds to '-'.
func isFoldedDash(c byte) bool { return c == '-' || aliasOfDash[c] }

// isConfiguredIdentity reports whether name is one of the configured
// identity headers outside x-wx-.
func (s *Stripper) isConfiguredIdentity(name string) bool {
	for _, n := range s.configured {
		if Equal(name, n) {
			return true
		}
	}
	return false
}

// aliasOfDash holds the bytes besides '-' that CGI-style backends (PHP,
// WSGI, CGI) turn into '_' in a header's variable name, as they do '-', so
// that a client's X_WX_OPENID, X.WX.OPENID or X~WX~OPENID is their
// X-WX-OPENID. These are the token characters HTTP admits in a header
// name other than letters, digits and '-'.
var aliasOfDash = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
}

// Normalize lower-cases name and reads each alias of '-' as '-'.
func Normalize(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = foldHeaderByte(c)
	}
	return string(b)
}

// foldHeaderByte lower-cases an ASCII letter and reads each alias of '-'
// as '-'.
func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case aliasOfDash[c]:
		return '-'
	}
	return c
}

// HasPrefix reports whether name, folded, starts with prefix, which is
// already folded. It does not allocate.
func HasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldHeaderByte(name[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func Equal(name, folded string) bool {
	return len(name) == len(folded) && HasPrefix(name, folded)
}

// Stripper strips a request of every identity a client could claim: the
// x-wx-* headers and the configured identity headers outside x-wx-. Its
// zero value strips x-wx-* only.
type Stripper struct {
	configured []string // configured identity header names outside x-wx-*, folded
}

// Add makes name an identity header too. Names under x-wx- are stripped by
// their prefix already; listing them again would cost every request a few
// comparisons per header.
func (s *Stripper) Add(name string) {
	if !HasIdentityPrefix(name) {
		s.configured = append(s.configured, Normalize(name))
	}
}
