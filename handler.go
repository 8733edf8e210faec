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

	if route, ok := h.routes[r.URL.Path]; ok {
		return route(w, r, next)
	}

	id, aerr := h.authenticate(r)
	if aerr != nil {
		if !h.Optional {
			writeError(w, aerr)
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
// from the Authorization header, never from the query string.
func (h *Handler) authenticate(r *http.Request) (*identity, *apiError) {
	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		metrics.verifications.WithLabelValues("missing").Inc()
		return nil, errUnauthorized
	}
	id, err := h.tokens.verify(raw)
	if err != nil {
		metrics.verifications.WithLabelValues("invalid").Inc()
		return nil, errInvalidToken
	}
	if h.store.Revoked(id.SID, time.Now()) {
		metrics.verifications.WithLabelValues("revoked").Inc()
		return nil, errInvalidToken
	}
	metrics.verifications.WithLabelValues("ok").Inc()
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
	r.Header.Del("Authorization")
	r.Header[h.HeaderOpenID] = []string{id.OpenID}
	r.Header[h.HeaderAppID] = []string{id.AppID}
	if id.UnionID != "" {
		r.Header[h.HeaderUnionID] = []string{id.UnionID}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id.OpenID)
		repl.Set("http.auth.user.unionid", id.UnionID)
		repl.Set("http.auth.user.appid", id.AppID)
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
