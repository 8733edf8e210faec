package wechatauth

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// ServeHTTP strips identity headers the client sent, serves the routes
// under RoutePrefix, and passes every other request on with the verified
// identity (or answers 401).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripIdentity(r.Header)

	if route, ok := h.routes.find(r.URL.Path); ok {
		return route(w, r, next)
	}

	id, aerr := h.authenticate(r)
	if aerr != nil {
		if !h.Optional {
			discardBody(w, r)
			writeError(w, r, aerr)
			return nil
		}
		if aerr != errUnauthorized {
			// An unverifiable Bearer token is ours; it goes no further.
			r.Header.Del("Authorization")
		}
		return next.ServeHTTP(w, r)
	}
	h.setIdentity(r, id)
	return next.ServeHTTP(w, r)
}

// authenticate verifies the Bearer token of r. The token is only ever read
// from the Authorization header, never from the query string. A token
// verified before is answered from the codec's cache until its exp; its
// revocation is checked every time.
func (h *Handler) authenticate(r *http.Request) (*identity, *apiError) {
	var header string
	if v := r.Header["Authorization"]; len(v) > 0 {
		header = v[0]
	}
	raw, ok := bearerToken(header)
	if !ok {
		metrics.verifiedMissing.Inc()
		return nil, errUnauthorized
	}
	now := time.Now()
	id, err := h.tokens.verifyCached(raw, now)
	if err != nil {
		metrics.verifiedInvalid.Inc()
		return nil, errInvalidToken
	}
	if h.store.Revoked(id.SID, now) {
		metrics.verifiedRevoked.Inc()
		return nil, errInvalidToken
	}
	metrics.verifiedOK.Inc()
	return id, nil
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive.
func bearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}

// setIdentity hands the verified identity to the next handler: identity
// headers, the {http.auth.user.*} placeholders, and no Authorization header
// (the token is for this module, not for the upstream).
func (h *Handler) setIdentity(r *http.Request, id *identity) {
	delete(r.Header, "Authorization")
	// One allocation for the header values. They are not shared
	// between requests: a later handler may rewrite a value in place.
	vals := &[4]string{id.OpenID, id.AppID, id.UnionID}
	r.Header[h.HeaderOpenID] = vals[0:1:1]
	r.Header[h.HeaderAppID] = vals[1:2:2]
	if id.UnionID != "" {
		r.Header[h.HeaderUnionID] = vals[2:3:3]
	}
	if h.assertion != nil {
		if vals[3] = h.assertion.of(id); vals[3] != "" {
			r.Header[h.assertion.header] = vals[3:4:4]
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		v := id.replValues()
		repl.Set("http.auth.user.id", v[0])
		repl.Set("http.auth.user.unionid", v[1])
		repl.Set("http.auth.user.appid", v[2])
	}
}

// stripIdentity deletes every header a client could use to claim an
// identity: all x-wx-* headers and the configured identity headers, matched
// case-insensitively with '_' read as '-' (some servers and CGI layers turn
// X_WX_OPENID into X-WX-OPENID).
func (h *Handler) stripIdentity(hdr http.Header) {
	for name := range hdr {
		if h.isIdentityHeader(name) {
			delete(hdr, name)
		}
	}
}

func (h *Handler) isIdentityHeader(name string) bool {
	if headerHasPrefix(name, "x-wx-") {
		return true
	}
	for _, n := range h.identityHdr {
		if headerEqual(name, n) {
			return true
		}
	}
	return false
}

// normalizeHeader lower-cases name and reads '_' as '-'.
func normalizeHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// foldHeaderByte lower-cases an ASCII letter and reads '_' as '-'.
func foldHeaderByte(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '_':
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

// validHeaderName reports whether name is a usable HTTP header name.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
