package wechatauth

import (
	"context"
	"net/http"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

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

// takeWebCookie removes the session cookie (under each of its names) from
// the request's Cookie headers, which are for the upstream, whatever the
// credential: a live session cookie must not reach it beside a Bearer
// token any more than alone. It returns the cookie's value when it is the
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
			apierr.DiscardBody(w, r)
			apierr.Write(w, r, aerr)
			return nil
		}
		return next.ServeHTTP(w, r)
	}
	if aerr := h.checkCSRF(r); aerr != nil {
		apierr.DiscardBody(w, r)
		apierr.Write(w, r, aerr)
		return nil
	}
	if id.Expires.Sub(now) < h.tokens.TTL()/2 {
		h.renewCookie(r.Context(), w, r, id)
	}
	h.setIdentity(r, id, idheader.SourceWeb)
	return next.ServeHTTP(w, r)
}

// checkCSRF refuses a cookie-authenticated write whose Origin (or, without
// one, Referer) is neither this site nor a return_to origin: the browser
// sends the cookie with a form another site posts.
func (h *Handler) checkCSRF(r *http.Request) *apierr.Error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
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
// token expires.
func (h *Handler) renewCookie(ctx context.Context, w http.ResponseWriter, r *http.Request, id *identity.Identity) {
	s, err := h.store.Get(ctx, id.SID)
	if err != nil || s.AppID != id.AppID || s.OpenID != id.OpenID || h.checkBanned(s.AppID, s.OpenID) != nil {
		return
	}
	if err := h.setSessionCookie(ctx, w, r, s); err != nil {
		h.logger.Debug("session cookie not renewed", zap.Error(err))
	}
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
