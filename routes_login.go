package wechatauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// tokenResponse is the answer of login and refresh.
type tokenResponse struct {
	Token     string `json:"token"`
	TokenType string `json:"token_type"`
	ExpiresIn int64  `json:"expires_in"`
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
}

// login exchanges a wx.login code for a session and a token.
func (h *Handler) login(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	err := h.doLogin(w, r)
	countLogin(err)
	return err
}

// countLogin counts a login request by its answer: every one, as the
// audit log records them, the refused before it is read included.
func countLogin(err error) {
	metrics.Logins.WithLabelValues(apierr.Result(err)).Inc()
}

func (h *Handler) doLogin(w http.ResponseWriter, r *http.Request) error {
	f, aerr := apierr.ReadFields(w, r)
	if aerr != nil {
		return aerr
	}
	switch {
	case f.Code == "":
		return apierr.InvalidRequest.WithMessage("The field code is required: send the code from wx.login.")
	case !apierr.ValidCode(f.Code):
		return apierr.InvalidRequest.WithMessage("The field code is malformed: send the code from wx.login as it is.")
	}
	appid, aerr := h.pickApp(f.AppID)
	if aerr != nil {
		return aerr
	}
	ws, err := h.platform.Login(r.Context(), appid, f.Code)
	if err != nil {
		audit.Noted(r, appid, "", "")
		return h.wechatFailure(r.Context(), "login", appid, err)
	}
	audit.Noted(r, appid, ws.OpenID, "")
	if aerr := h.checkBanned(appid, ws.OpenID); aerr != nil {
		return aerr
	}
	s := &session.Session{
		SID:        session.NewID(),
		AppID:      appid,
		OpenID:     ws.OpenID,
		UnionID:    ws.UnionID,
		SessionKey: ws.SessionKey,
	}
	// Dated as its first token is: after a revocation of the user in this
	// second, at the cut-off, so neither counts as begun before it.
	s.Created = h.issueTime(s)
	audit.Noted(r, appid, s.OpenID, s.SID)
	if err := h.store.Put(r.Context(), s, time.Duration(h.SessionTTL)); err != nil {
		h.logger.Warn("session store refused a new session", zap.Error(err))
		return apierr.StoreUnavailable
	}
	h.logger.Debug("login", zap.String("appid", appid), zap.String("openid", s.OpenID))
	return h.writeToken(r.Context(), w, s)
}

// pickApp chooses the app of a login: the one configured, or the one named.
// The web login's apps are not mini programs: with web login on, they are
// left out.
func (h *Handler) pickApp(appid string) (string, *apierr.Error) {
	if h.web == nil {
		return h.shared.pickApp(appid, errAppMissing, errAppUnknown)
	}
	mini := shared{secrets: make(map[string]string, len(h.secrets))}
	for id, secret := range h.secrets {
		if id != h.web.oaApp && id != h.web.qrApp {
			mini.secrets[id] = secret
		}
	}
	return mini.pickApp(appid, errAppMissing, errAppUnknown)
}

// The answers of a login that names no app, or one not served.
var (
	errAppMissing = apierr.InvalidRequest.WithMessage("The field appid is required: this server serves several mini programs.")
	errAppUnknown = apierr.InvalidRequest.WithMessage("The appid is not one this server serves.")
)

// pickApp chooses among the apps served: the one named, which must be one
// of them, or, when none is named, the only one; missing and unknown are
// the answers when neither holds.
func (h *shared) pickApp(named string, missing, unknown *apierr.Error) (string, *apierr.Error) {
	if named == "" {
		if len(h.secrets) == 1 {
			for id := range h.secrets {
				return id, nil
			}
		}
		return "", missing
	}
	if _, ok := h.secrets[named]; !ok {
		return "", unknown
	}
	return named, nil
}

func (h *Handler) writeToken(ctx context.Context, w http.ResponseWriter, s *session.Session) error {
	now := h.issueTime(s)
	if err := h.store.ExtendHorizon(ctx, now.Add(h.tokens.TTL())); err != nil {
		h.logger.Warn("session store could not record how long tokens live", zap.Error(err))
		return apierr.StoreUnavailable
	}
	tok, exp, err := h.tokens.Issue(token.Subject{AppID: s.AppID, OpenID: s.OpenID, UnionID: s.UnionID, SID: s.SID}, now)
	if err != nil {
		return err
	}
	apierr.WriteJSON(w, http.StatusOK, tokenResponse{
		Token:     tok,
		TokenType: "Bearer",
		ExpiresIn: int64(exp.Sub(now) / time.Second),
		OpenID:    s.OpenID,
		UnionID:   s.UnionID,
	})
	return nil
}

// refresh issues a new token for the caller's session.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	_, s, err := h.session(r)
	if err != nil {
		return err
	}
	if aerr := skipBody(w, r); aerr != nil {
		return aerr
	}
	// A token that slipped past a ban (issued on an instance that had not
	// heard of it yet) must not be renewed.
	if aerr := h.checkBanned(s.AppID, s.OpenID); aerr != nil {
		return aerr
	}
	return h.writeToken(r.Context(), w, s)
}

// logoutTimeout bounds a logout's store calls, so the route answers within
// 2 s even when Redis is slow.
const logoutTimeout = 1500 * time.Millisecond

// logout revokes every token of the caller's session and forgets it.
// With the session cookie as its credential (and from this site's own
// pages: csrf_refused otherwise), it also clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	id, byCookie, aerr := h.authenticateAny(r)
	if byCookie {
		if aerr == nil {
			aerr = h.checkCSRF(r)
		}
		if aerr == nil || aerr == apierr.InvalidToken {
			http.SetCookie(w, weblogin.ClearSessionCookie(h.web.cookieName(r), r.TLS != nil))
			// The pages the session showed stay in the browser's
			// back/forward cache: going back on a shared device would
			// show them, logged in, without asking the server.
			w.Header().Set("Clear-Site-Data", `"cache"`)
		}
	}
	if aerr != nil {
		return aerr
	}
	if aerr := skipBody(w, r); aerr != nil {
		return aerr
	}
	// One deadline for the whole route, so a slow store cannot stretch it.
	ctx, cancel := context.WithTimeout(r.Context(), logoutTimeout)
	defer cancel()
	// Every token of the session must stay refused until the last one has
	// expired. A refresh may have issued one up to token_ttl from now; one
	// issued before a reload that shortened token_ttl, or by an instance
	// with a longer one, may live longer: the store's horizon covers those.
	until := time.Now().Add(time.Duration(h.TokenTTL))
	if id.Expires.After(until) {
		until = id.Expires
	}
	if hz, _ := h.store.Horizon(ctx); hz.After(until) {
		until = hz
	}
	if err := h.store.Revoke(ctx, id.SID, until); err != nil {
		h.logger.Warn("logout honoured on this instance only", zap.Error(err))
		return apierr.StoreUnavailable
	}
	if err := h.store.Delete(ctx, id.SID); err != nil {
		h.logger.Warn("revoked session could not be deleted", zap.Error(err))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// session authenticates r and loads its session.
func (h *Handler) session(r *http.Request) (*identity.Identity, *session.Session, error) {
	id, aerr := h.authenticateBearer(r)
	if aerr != nil {
		return nil, nil, aerr
	}
	s, err := h.sessionOf(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	return id, s, nil
}

func (h *Handler) sessionOf(ctx context.Context, id *identity.Identity) (*session.Session, error) {
	s, err := h.store.Get(ctx, id.SID)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return nil, apierr.SessionExpired
	case err != nil:
		if ctx.Err() == nil {
			h.logger.Warn("session store unavailable", zap.Error(err))
		}
		return nil, apierr.StoreUnavailable
	case s.AppID != id.AppID || s.OpenID != id.OpenID:
		return nil, apierr.InvalidToken
	}
	return s, nil
}

// wechatFailure logs a WeChat error for the operator and maps it for the
// client. Errors only the operator can fix are logged at ERROR.
func (h *shared) wechatFailure(ctx context.Context, route, appid string, err error) *apierr.Error {
	ae := apierr.FromWeChat(err)
	fix, isConfig := wechat.ConfigFix(ae.WeChatErrcode())
	switch {
	case ctx.Err() != nil:
		// The client gave up first; WeChat is not to blame.
		h.logger.Debug("client went away during a WeChat call", zap.String("route", route))
	case isConfig:
		if _, seen := h.configErrorsLogged.LoadOrStore(appid+"/"+strconv.Itoa(ae.WeChatErrcode()), true); !seen {
			h.logger.Error("WeChat configuration error: "+fix,
				zap.String("route", route), zap.String("appid", appid), zap.Int("errcode", ae.WeChatErrcode()))
		}
	case ae.Code() == apierr.WeChatUnavailable.Code():
		// The error text never holds the URL, secret or code.
		h.logger.Warn("WeChat unavailable", zap.String("route", route), zap.String("appid", appid), zap.Error(err))
	default:
		h.logger.Info("WeChat refused a request", zap.String("route", route), zap.String("appid", appid),
			zap.Int("errcode", ae.WeChatErrcode()), zap.String("answer", ae.Code()))
	}
	return ae
}

// issueTime is the time a new token of s is issued at (see
// session.Users.IssueTime).
func (h *Handler) issueTime(s *session.Session) time.Time {
	return h.users.IssueTime(s.AppID, s.OpenID, time.Now())
}

// errBannedUser answers the login of a user an operator banned: the
// catalogue's user_blocked, with the operator, not WeChat, as its cause.
var errBannedUser = apierr.UserBlocked.WithMessage("This user is blocked by the operator of this service.")

// checkBanned refuses the login of a banned user.
func (h *Handler) checkBanned(appid, openid string) *apierr.Error {
	if h.users.Banned(appid, openid, time.Now()) != nil {
		return errBannedUser
	}
	return nil
}
