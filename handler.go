package wechatauth

import (
	"net/http"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ServeHTTP strips identity headers the client sent, serves the routes
// under RoutePrefix, and passes every other request on with the verified
// identity (or answers 401).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.strip.Strip(r)

	if route, ok := h.routes.find(r.URL.Path); ok {
		return route(w, r, next)
	}
	// The session cookie leaves the Cookie header whatever the request's
	// credential; it is the credential only when no Authorization header
	// came (Bearer first). A request without cookies pays one lookup.
	if h.web != nil {
		if _, ok := r.Header["Cookie"]; ok {
			if v, ok := h.takeWebCookie(r); ok {
				return h.serveCookie(w, r, next, v)
			}
		}
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
	h.setIdentity(r, id, idheader.SourceClient)
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
	id, err := h.tokens.VerifyCached(raw, now)
	if err != nil {
		metrics.VerifiedInvalid.Inc()
		return nil, apierr.InvalidToken
	}
	if h.store.Revoked(id.SID, now) || h.users.Refused(id) {
		metrics.VerifiedRevoked.Inc()
		return nil, apierr.InvalidToken
	}
	metrics.VerifiedOK.Inc()
	return id, nil
}

// setIdentity hands the verified identity to the next handler: identity
// headers (X-WX-SOURCE says which credential: idheader.SourceClient or
// SourceWeb), the {http.auth.user.*} placeholders, and no Authorization
// header (the token is for this module, not for the upstream).
func (h *Handler) setIdentity(r *http.Request, id *identity.Identity, source string) {
	delete(r.Header, "Authorization")
	// One allocation for the header values, no larger than they need. They
	// are not shared between requests: a later handler may rewrite a value
	// in place.
	var vals []string
	switch {
	case h.assertion != nil:
		vals = (&[5]string{id.OpenID, id.AppID, source, id.UnionID, h.assertion.Of(id)})[:]
	case id.UnionID != "":
		vals = (&[4]string{id.OpenID, id.AppID, source, id.UnionID})[:]
	default:
		vals = (&[3]string{id.OpenID, id.AppID, source})[:]
	}
	r.Header[h.HeaderOpenID] = vals[0:1:1]
	r.Header[h.HeaderAppID] = vals[1:2:2]
	r.Header[idheader.Source] = vals[2:3:3]
	if id.UnionID != "" {
		r.Header[h.HeaderUnionID] = vals[3:4:4]
	}
	if len(vals) == 5 && vals[4] != "" {
		r.Header[h.assertion.Header()] = vals[4:5:5]
	}
	// The placeholders are answered by the identity itself rather than set
	// one by one: three more entries in the replacer's map, which
	// reverse_proxy fills with a dozen of its own, cost a map growth and a
	// rehash on every request. A value a later handler sets still wins
	// (the replacer reads its set values first).
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Map(id.Placeholders())
	}
}
