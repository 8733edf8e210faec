package wechatauth

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"golang.org/x/text/unicode/norm"
)

// ServeHTTP strips identity headers the client sent, serves the routes
// under RoutePrefix, and passes every other request on with the verified
// identity (or answers 401).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.strip.Strip(r)

	if route, ok := h.routes.find(r.URL.Path); ok {
		return h.serveRoute(route, w, r, next)
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
			h.refuse(w, r, aerr)
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

// serveRoute serves one of the module's routes, counted in h.inFlight:
// unlike a proxied request, a route uses the store and WeChat.
func (h *Handler) serveRoute(route routeFunc, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.inFlight.enter()
	defer h.inFlight.leave()
	return route(w, r, next)
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
// the end of the last segment. It also refuses bytes that are not UTF-8:
// an overlong form such as C0 AE is '.' to a lenient decoder, so
// "%c0%ae%c0%ae" is a ".." segment to some servers. Beyond ASCII it
// refuses what normalizing servers read as the characters above or as
// another segment: a path whose NFKC form (Java's Normalizer, Python's
// unicodedata) holds any of them or more '/' (fullwidth '．．' is "..",
// '；' is ';', '／' is '/'), the yen and won signs (Windows' best-fit
// conversion to Japanese and Korean code pages makes them '\'), C1
// controls and the line and paragraph separators; a path whose skeleton
// (what a server that drops invisible characters or transliterates makes
// of it) holds any of them or more '/'; and one of more than
// maxPlainUnicode bytes, whose normal form could cost a request without a
// token far more to compute.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] >= utf8.RuneSelf {
			return plainUnicode(p)
		}
	}
	return plainASCII(p)
}

// maxPlainUnicode bounds a public path beyond ASCII: NFKC may make a
// 3-byte rune 33 bytes, and public file names are short.
const maxPlainUnicode = 1024

// plainUnicode is plainPath for a path holding bytes beyond ASCII.
func plainUnicode(p string) bool {
	if len(p) > maxPlainUnicode || !utf8.ValidString(p) || !plainASCII(p) {
		return false
	}
	for _, r := range p {
		switch {
		case r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xa5, r == 0x20a9:
			return false
		}
	}
	// The skeleton keeps every ASCII byte and '/' of the NFKC form, so a
	// form that fails the check fails it in the skeleton too.
	s := skeleton(norm.NFKC.String(p))
	return strings.Count(s, "/") == strings.Count(p, "/") && plainASCII(s)
}

// skeleton is what a server that drops invisible characters or
// transliterates to ASCII (iconv's //TRANSLIT, slug libraries) may make
// of a normalized path: combining marks, format characters and other
// default-ignorables dropped ('.' U+200B '.' is ".."), and the look-alikes
// of '.', '/', '\' and '#' that NFKC keeps made those characters.
func skeleton(n string) string {
	var b strings.Builder
	for _, r := range n {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector):
		case r == 0xb7:
			b.WriteByte('.')
		case r == 0xf7, r == 0x2044, r == 0x2215, r == 0x2571, r == 0x27cb, r == 0x29f8:
			b.WriteByte('/')
		case r == 0x2216, r == 0x2572, r == 0x27cd, r == 0x29f5, r == 0x29f9:
			b.WriteByte('\\')
		case r == 0x29e3, r == 0x29e5:
			b.WriteByte('#')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// plainASCII is plainPath's test of the ASCII bytes of p.
func plainASCII(p string) bool {
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

// errNoCredentialWeb is the 401 without credentials on a site with web
// login, where a browser's credential is the session cookie.
var errNoCredentialWeb = apierr.Unauthorized.WithMessage("This request needs a Bearer token, or in a browser the session cookie of a web login: log in first.")

// errBearerOnly is the 401 without a Bearer token of the routes that take
// only the mini program's token, on a site with web login.
var errBearerOnly = apierr.Unauthorized.WithMessage("This route takes the mini program's Bearer token, not a web session cookie: send Authorization: Bearer <token>.")

// authenticateBearer is authenticate for the routes that take only the
// mini program's Bearer token (a session cookie is no credential there):
// its 401 without one does not suggest the cookie.
func (h *Handler) authenticateBearer(r *http.Request) (*identity.Identity, *apierr.Error) {
	id, aerr := h.authenticate(r)
	if aerr == errNoCredentialWeb {
		aerr = errBearerOnly
	}
	return id, aerr
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
		if h.web != nil {
			return nil, errNoCredentialWeb
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

// The session cookie is the second credential source, after the Bearer
// token: it is the credential only when web login is on and the request
// carries no Authorization header at all; with one, it is removed unread. Its value is a token of the codec sealed
// (token.SealCookie), so it names no user, and it is checked like a token:
// cached, revocation and bans every time.

// webCookie returns the session cookie's value when it is the request's
// credential.
func (h *Handler) webCookie(r *http.Request) (string, bool) {
	if h.web == nil || len(r.Header["Authorization"]) != 0 {
		return "", false
	}
	return weblogin.CookieValue(r.Header, h.web.cookieName(r))
}

// takeWebCookie removes the session cookie (under each of its names) and
// the state cookies from the request's Cookie headers, which are for the
// upstream, whatever the credential: a live session cookie must not reach
// it beside a Bearer token any more than alone. It returns the cookie's value when it is the
// request's credential (no Authorization header).
func (h *Handler) takeWebCookie(r *http.Request) (string, bool) {
	if len(r.Header["Authorization"]) != 0 {
		h.web.stripCookies(r.Header)
		return "", false
	}
	name := h.web.cookieName(r)
	v, ok := weblogin.TakeCookie(r.Header, name)
	for _, n := range h.web.cookieNames {
		if n != name {
			weblogin.StripCookie(r.Header, n)
		}
	}
	weblogin.StripStateCookies(r.Header)
	return v, ok
}

// authenticateCookie verifies a session cookie's value.
func (h *Handler) authenticateCookie(v string) (*identity.Identity, *apierr.Error) {
	return h.authenticateCookieAt(v, time.Now())
}

func (h *Handler) authenticateCookieAt(v string, now time.Time) (*identity.Identity, *apierr.Error) {
	id, err := h.tokens.OpenCookieCached(v, now)
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

// serveCookie passes on a request whose credential is the session cookie
// v (already taken out of its Cookie header): a write from another site's
// page is refused (csrf_refused); a session in the second half of its
// token's life gets a fresh cookie.
func (h *Handler) serveCookie(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, v string) error {
	now := time.Now()
	id, aerr := h.authenticateCookieAt(v, now)
	if aerr != nil {
		// A dead cookie is of no use to the browser: drop it.
		http.SetCookie(w, weblogin.ClearSessionCookie(h.web.cookieName(r), r.TLS != nil))
		if !h.Optional && !h.isPublic(r) {
			h.refuse(w, r, aerr)
			return nil
		}
		return next.ServeHTTP(newPrivateAnswer(w), r)
	}
	if aerr := h.checkCSRF(r); aerr != nil {
		apierr.Refuse(w, r, aerr)
		return nil
	}
	if id.Expires.Sub(now) < h.tokens.TTL()/2 && h.renewCookie(r.Context(), w, r, id) {
		w = newPrivateAnswer(w)
	}
	h.setIdentity(r, id, idheader.SourceWeb)
	return next.ServeHTTP(w, r)
}

// checkCSRF refuses a cookie-authenticated write whose Origin (or, without
// one, Referer) is neither this site nor a return_to origin: the browser
// sends the cookie with a form another site posts. A WebSocket handshake
// is judged as a write: it is a GET, but it opens a channel both ways
// under the cookie's identity, and a browser makes one from any page,
// with the cookie when the page is of the same site (another port, a
// sibling subdomain).
func (h *Handler) checkCSRF(r *http.Request) *apierr.Error {
	if !weblogin.OriginChecked(r) {
		return nil
	}
	site, _ := siteOf(r)
	if weblogin.CSRFAllowed(r, site, h.web.origins) {
		return nil
	}
	metrics.WebCSRF.Inc()
	return apierr.CSRFRefused
}

// renewCookie replaces the cookie of a session still kept (and of a user
// not banned) by one with a fresh token, so a browser in use stays logged
// in until session_ttl. Failing that, the cookie lives on until its
// token expires. It reports whether it set a new cookie.
func (h *Handler) renewCookie(ctx context.Context, w http.ResponseWriter, r *http.Request, id *identity.Identity) bool {
	h.inFlight.enter()
	defer h.inFlight.leave()
	s, err := h.store.Get(ctx, id.SID)
	if err != nil || s.AppID != id.AppID || s.OpenID != id.OpenID || h.checkBanned(s.AppID, s.OpenID) != nil {
		return false
	}
	if err := h.setSessionCookie(ctx, w, r, s); err != nil {
		h.logger.Debug("session cookie not renewed", zap.Error(err))
		return false
	}
	return true
}

// setSessionCookie issues a token for s and sets it, sealed, as the
// session cookie, to last as long as the token.
func (h *Handler) setSessionCookie(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session.Session) error {
	now := h.issueTime(s)
	if err := h.store.ExtendHorizon(ctx, now.Add(h.tokens.TTL())); err != nil {
		return apierr.StoreUnavailable
	}
	tok, _, err := h.tokens.Issue(token.Subject{AppID: s.AppID, OpenID: s.OpenID, UnionID: s.UnionID, SID: s.SID}, now)
	if err != nil {
		return err
	}
	v, err := h.tokens.SealCookie(tok)
	if err != nil {
		return err
	}
	http.SetCookie(w, weblogin.SessionCookie(h.web.cookieName(r), v, r.TLS != nil, h.tokens.TTL()))
	return nil
}

// authenticateAny verifies the request's credential: its Bearer token, or
// with no Authorization header the session cookie. byCookie says which.
func (h *Handler) authenticateAny(r *http.Request) (id *identity.Identity, byCookie bool, aerr *apierr.Error) {
	if v, ok := h.webCookie(r); ok {
		id, aerr = h.authenticateCookie(v)
		return id, true, aerr
	}
	id, aerr = h.authenticate(r)
	return id, false, aerr
}

// siteOf returns this site's origin as the request reached it, and whether
// it is HTTPS.
func siteOf(r *http.Request) (origin string, https bool) {
	if r.TLS != nil {
		return "https://" + r.Host, true
	}
	return "http://" + r.Host, false
}
