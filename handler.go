package wechatauth

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ServeHTTP strips identity headers the client sent, serves the routes
// under RoutePrefix, and passes every other request on with the verified
// identity (or answers 401).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripIdentity(r)

	if route, ok := h.routes.find(r.URL.Path); ok {
		return route(w, r, next)
	}

	id, aerr := h.authenticate(r)
	if aerr != nil {
		if !h.Optional && !h.isPublic(r) {
			apierr.DiscardBody(w, r)
			apierr.Write(w, r, aerr)
			return nil
		}
		// An unverifiable Bearer token is ours; it goes no further, on
		// whichever Authorization line it came.
		credential.DropBearer(r.Header)
		return next.ServeHTTP(w, r)
	}
	h.setIdentity(r, id)
	return next.ServeHTTP(w, r)
}

// isPublic reports whether r is on one of the public paths, which pass on
// without a token. Only a plain path can be public: one that an upstream
// may read as another path is judged as a protected one.
func (h *Handler) isPublic(r *http.Request) bool {
	if len(h.PublicPaths) == 0 {
		return false
	}
	if r.URL.Opaque != "" || !plainPath(r.URL.Path) || r.URL.RawPath != "" && !plainRawPath(r.URL.RawPath) {
		return false
	}
	if _, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); !ok {
		return false // MatchPath needs Caddy's replacer; every Caddy request has one
	}
	return h.PublicPaths.Match(r)
}

// plainPath reports whether a decoded request path means the same to every
// server behind this one. It refuses what some servers cut the path at or
// strip before they route: ';' (path parameters, which Tomcat, Jetty and
// Spring drop, and resolve ".." afterwards), control characters (NUL, LF,
// ...), '#', '?' and '\'; a '%' (a path encoded twice, which a server that
// decodes again reads as another path); and a segment made only of dots
// ("." and "..", in any spelling once decoded). Because the path ends at its
// last segment's last byte, a suffix pattern such as *.png then matches only
// the end of the last segment.
func plainPath(p string) bool {
	dots := 0 // the dots the current segment holds so far, -1 once it holds anything else
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '/':
			if dots > 0 {
				return false
			}
			dots = 0
		case c == '.':
			if dots >= 0 {
				dots++
			}
		case c < 0x20 || c == 0x7f || c == ';' || c == '#' || c == '?' || c == '\\' || c == '%':
			return false
		default:
			dots = -1
		}
	}
	return dots <= 0
}

// plainRawPath reports whether the request's path as sent, when it differs
// from its decoded form only by escapes, holds nothing plainPath refuses:
// '%3B' and '%2E' are checked in the decoded path, and an escape of '/'
// ('%2F'), which a server may keep as part of a segment, is refused here.
func plainRawPath(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '2' && raw[i+2]|0x20 == 'f' {
			return false
		}
	}
	return true
}

// authenticate verifies the Bearer token of r. The token is only ever read
// from the Authorization header, never from the query string. A token
// verified before is answered from the codec's cache until its exp; its
// revocation is checked every time.
func (h *Handler) authenticate(r *http.Request) (*identity.Identity, *apierr.Error) {
	raw, n := credential.Bearer(r.Header["Authorization"])
	switch {
	case n == 0:
		metrics.VerifiedMissing.Inc()
		if credential.Misplaced(r) {
			return nil, apierr.TokenMisplaced
		}
		return nil, apierr.Unauthorized
	case n > 1:
		// Which of two tokens counts is nobody's guess: neither does.
		metrics.VerifiedInvalid.Inc()
		return nil, apierr.InvalidToken
	}
	now := time.Now()
	id, err := h.tokens.verifyCached(raw, now)
	if err != nil {
		metrics.VerifiedInvalid.Inc()
		return nil, apierr.InvalidToken
	}
	if h.store.Revoked(id.SID, now) || h.users.refused(id) {
		metrics.VerifiedRevoked.Inc()
		return nil, apierr.InvalidToken
	}
	metrics.VerifiedOK.Inc()
	return id, nil
}

// headerSource is set on every verified request, as WeChat Cloud Hosting
// does: apps written for it treat a request as coming through WeChat when it
// is present.
const (
	headerSource = "X-Wx-Source"
	sourceClient = "wx_client"
)

// setIdentity hands the verified identity to the next handler: identity
// headers, the {http.auth.user.*} placeholders, and no Authorization header
// (the token is for this module, not for the upstream).
func (h *Handler) setIdentity(r *http.Request, id *identity.Identity) {
	delete(r.Header, "Authorization")
	// One allocation for the header values, no larger than they need. They
	// are not shared between requests: a later handler may rewrite a value
	// in place.
	var vals []string
	switch {
	case h.assertion != nil:
		vals = (&[5]string{id.OpenID, id.AppID, sourceClient, id.UnionID, h.assertion.of(id)})[:]
	case id.UnionID != "":
		vals = (&[4]string{id.OpenID, id.AppID, sourceClient, id.UnionID})[:]
	default:
		vals = (&[3]string{id.OpenID, id.AppID, sourceClient})[:]
	}
	r.Header[h.HeaderOpenID] = vals[0:1:1]
	r.Header[h.HeaderAppID] = vals[1:2:2]
	r.Header[headerSource] = vals[2:3:3]
	if id.UnionID != "" {
		r.Header[h.HeaderUnionID] = vals[3:4:4]
	}
	if len(vals) == 5 && vals[4] != "" {
		r.Header[h.assertion.header] = vals[4:5:5]
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		v := id.ReplValues()
		repl.Set("http.auth.user.id", v[0])
		repl.Set("http.auth.user.unionid", v[1])
		repl.Set("http.auth.user.appid", v[2])
	}
}

// stripIdentity removes every way a client could claim an identity: all
// x-wx-* headers and the configured identity headers, matched
// case-insensitively with '_', '.' and the other aliases of '-' read as
// '-' (CGI-style backends read X_WX_OPENID or X~WX~OPENID as X-WX-OPENID,
// and Caddy admits X.WX.OPENID with expected_dot_headers); the same names
// in Connection, which would
// make reverse_proxy drop the verified identity as hop-by-hop; and the same
// names as request trailers.
func (h *Handler) stripIdentity(r *http.Request) {
	hdr := r.Header
	for name := range hdr {
		switch {
		case hasIdentityPrefix(name) || len(h.identityHdr) > 0 && h.isConfiguredIdentity(name): // isIdentityHeader, inlined
			delete(hdr, name)
		case name == "Connection":
			if kept, changed := h.connectionWithoutIdentity(hdr[name]); changed {
				hdr[name] = kept
			}
		}
	}
	if len(r.Trailer) > 0 {
		h.stripTrailers(r)
	}
}

// connectionWithoutIdentity returns the Connection values without the
// tokens that name identity headers, and whether there were any. It
// allocates only then.
func (h *Handler) connectionWithoutIdentity(vals []string) ([]string, bool) {
	named := false
	for _, v := range vals {
		for tok := range strings.SplitSeq(v, ",") {
			if h.isIdentityHeader(strings.TrimSpace(tok)) {
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
			if t := strings.TrimSpace(tok); t != "" && !h.isIdentityHeader(t) {
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
func (h *Handler) stripTrailers(r *http.Request) {
	h.deleteIdentity(r.Trailer)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, h: h, trailer: r.Trailer}
	}
}

// deleteIdentity deletes the identity headers of hdr.
func (h *Handler) deleteIdentity(hdr http.Header) {
	for name := range hdr {
		if h.isIdentityHeader(name) {
			delete(hdr, name)
		}
	}
}

// trailerGuard is a request body that removes identity trailers once the
// body has been read to its end.
type trailerGuard struct {
	io.ReadCloser
	h       *Handler
	trailer http.Header
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		g.h.deleteIdentity(g.trailer)
	}
	return n, err
}

// isIdentityHeader reports whether a client's header name claims an
// identity. It runs for every header of every request, so the common
// answer (no, and not under x-wx-) costs a byte comparison.
func (h *Handler) isIdentityHeader(name string) bool {
	return hasIdentityPrefix(name) || len(h.identityHdr) > 0 && h.isConfiguredIdentity(name)
}

// hasIdentityPrefix reports whether name, folded, starts with "x-wx-". The
// bytes are tested one by one: c|0x20 is 'x' for 'X' and 'x' only.
func hasIdentityPrefix(name string) bool {
	return len(name) >= 5 && name[0]|0x20 == 'x' && isFoldedDash(name[1]) &&
		name[2]|0x20 == 'w' && name[3]|0x20 == 'x' && isFoldedDash(name[4])
}

// isFoldedDash reports whether c folds to '-'.
func isFoldedDash(c byte) bool { return c == '-' || aliasOfDash[c] }

// isConfiguredIdentity reports whether name is one of the configured
// identity headers outside x-wx-.
func (h *Handler) isConfiguredIdentity(name string) bool {
	for _, n := range h.identityHdr {
		if headerEqual(name, n) {
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

// normalizeHeader lower-cases name and reads each alias of '-' as '-'.
func normalizeHeader(name string) string {
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

// headerHasPrefix reports whether name, folded, starts with prefix, which is
// already folded. It does not allocate.
func headerHasPrefix(name, prefix string) bool {
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

func headerEqual(name, folded string) bool {
	return len(name) == len(folded) && headerHasPrefix(name, folded)
}
