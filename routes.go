package wechatauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddy-wechat/wechatauth/internal/identity"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/wechat"
)

// routeFunc serves one route. An *apierr.Error it returns is written as the
// JSON answer; any other error goes to Caddy.
type routeFunc func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error

// route is one entry of the route table: the methods it answers, whether
// it takes a body, and what serves it.
type route struct {
	// methods answered; any other gets 405 naming them in Allow. Empty:
	// every method.
	methods []string
	// noBody: the route never reads the body, so neither limits nor
	// drains it (see verify).
	noBody bool
	serve  routeFunc
}

// routeTable maps paths to the routes under route_prefix. A route under
// subtree also serves every path below it.
type routeTable struct {
	prefix  string // every route's path starts with it
	exact   map[string]routeFunc
	subtree []subtreeRoute
}

// subtreeRoute serves every path that starts with prefix.
type subtreeRoute struct {
	prefix string // with its trailing '/'
	serve  routeFunc
}

// find returns the route serving path. A path outside the route prefix
// (nearly every proxied request) costs one prefix check.
func (t routeTable) find(path string) (routeFunc, bool) {
	if !strings.HasPrefix(path, t.prefix) {
		return nil, false
	}
	if fn, ok := t.exact[path]; ok {
		return fn, true
	}
	for _, st := range t.subtree {
		if strings.HasPrefix(path, st.prefix) {
			return st.serve, true
		}
	}
	return nil, false
}

func (h *Handler) newRoutes() routeTable {
	p := strings.TrimSuffix(h.RoutePrefix, "/") // route_prefix "/" serves /login
	post := []string{http.MethodPost}
	routes := map[string]route{
		p + "/login":    {methods: post, serve: h.login},
		p + "/refresh":  {methods: post, serve: h.refresh},
		p + "/logout":   {methods: post, serve: h.logout},
		p + "/userinfo": {methods: post, serve: h.userinfo},
		p + "/phone":    {methods: post, serve: h.phone},
		p + "/decrypt":  {methods: post, serve: h.decrypt},
		p + "/verify":   {noBody: true, serve: h.verify},
	}
	if h.Sandbox {
		routes[p+"/sandbox/encrypt"] = route{methods: post, serve: h.sandboxEncrypt}
	}
	if h.assertion != nil {
		routes[p+"/jwks.json"] = route{methods: []string{http.MethodGet, http.MethodHead}, serve: h.jwks}
	}
	t := routeTable{
		prefix: p + "/",
		exact:  make(map[string]routeFunc, len(routes)),
	}
	for path, rt := range routes {
		rt.serve = h.audited(strings.TrimPrefix(path, p), rt.checked())
		t.exact[path] = rt.dispatch()
	}
	// Envoy's ext_authz path_prefix appends the request's path. (verify
	// is not audited: its entry is the checked route itself.)
	t.subtree = []subtreeRoute{{p + "/verify/", t.exact[p+"/verify"]}}
	return t
}

// checked returns the route's serve preceded by the checks every route
// makes before it acts: other methods are refused (405), and for a route
// that takes a body, bodies declared larger than apierr.MaxBody (413). The
// refusal is returned as the route's error, so the audit entry of the
// route records it like any other answer.
func (rt route) checked() routeFunc {
	var errMethods *apierr.Error
	if len(rt.methods) > 0 {
		errMethods = apierr.Method.Allowing(rt.methods)
	}
	serve := rt.serve
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		if errMethods != nil && !slices.Contains(rt.methods, r.Method) {
			return errMethods
		}
		if !rt.noBody && r.ContentLength > apierr.MaxBody {
			return apierr.PayloadTooLarge
		}
		return serve(w, r, next)
	}
}

// dispatch returns the route as a routeFunc that writes an *apierr.Error the
// route returns as the answer. Whatever the answer, what a body route left
// unread of the body is read before the connection can close (see
// apierr.DiscardBody).
func (rt route) dispatch() routeFunc {
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		if !rt.noBody {
			defer apierr.DiscardBody(w, r)
		}
		err := rt.serve(w, r, next)
		if err == nil {
			return nil
		}
		var ae *apierr.Error
		if errors.As(err, &ae) {
			apierr.Write(w, r, ae)
			return nil
		}
		return err
	}
}

// skipBody reads a body the route has no use for, so that one sent
// chunked past apierr.MaxBody is refused (413) like any other, before the route
// acts.
func skipBody(w http.ResponseWriter, r *http.Request) *apierr.Error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	_, aerr := apierr.ReadBody(w, r)
	return aerr
}

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
	result := apierr.Result(err)
	metrics.Logins.WithLabelValues(result).Inc()
	return err
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
	ws, err := h.wx.Code2Session(r.Context(), appid, f.Code)
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
func (h *Handler) pickApp(appid string) (string, *apierr.Error) {
	if appid == "" {
		if len(h.secrets) == 1 {
			for id := range h.secrets {
				return id, nil
			}
		}
		return "", apierr.InvalidRequest.WithMessage("The field appid is required: this server serves several mini programs.")
	}
	if _, ok := h.secrets[appid]; !ok {
		return "", apierr.InvalidRequest.WithMessage("The appid is not one this server serves.")
	}
	return appid, nil
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
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	id, aerr := h.authenticate(r)
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

// userinfo decrypts wx.getUserInfo / getUserProfile data; with
// forward_profile the result goes upstream instead of back to the client.
func (h *Handler) userinfo(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.serveOpenData(w, r, next, h.ForwardProfile)
}

// decrypt decrypts any other open data: WeRun, share and group info.
func (h *Handler) decrypt(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.serveOpenData(w, r, next, false)
}

func (h *Handler) serveOpenData(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, forward bool) error {
	id, s, err := h.session(r)
	if err != nil {
		return err
	}
	f, aerr := apierr.ReadFields(w, r)
	if aerr != nil {
		return aerr
	}
	plain, err := h.decryptFields(f, s)
	if err != nil {
		return err
	}
	if forward {
		return h.forward(w, r, next, id, plain)
	}
	apierr.WriteRawJSON(w, http.StatusOK, plain)
	return nil
}

// phone returns the caller's phone number, from a phone button code (the
// current API) or from the old button's encrypted data.
func (h *Handler) phone(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	id, aerr := h.authenticate(r)
	if aerr != nil {
		return aerr
	}
	f, aerr := apierr.ReadFields(w, r)
	if aerr != nil {
		return aerr
	}
	var info *wechat.PhoneInfo
	switch {
	case f.Code != "":
		if !apierr.ValidCode(f.Code) {
			return apierr.InvalidRequest.WithMessage("The field code is malformed.")
		}
		var err error
		info, err = h.wx.PhoneNumber(r.Context(), id.AppID, f.Code, id.OpenID)
		if err != nil {
			ae := h.wechatFailure(r.Context(), "phone", id.AppID, err)
			if ae.Code() == apierr.InvalidCode.Code() {
				ae = ae.WithMessage("WeChat refused the phone code (expired or already used): ask the user to tap the phone button again.")
			}
			return ae
		}
	case f.EncryptedData != "" || f.IV != "":
		s, err := h.sessionOf(r.Context(), id)
		if err != nil {
			return err
		}
		plain, err := h.decryptFields(f, s)
		if err != nil {
			return err
		}
		info = new(wechat.PhoneInfo)
		if json.Unmarshal(plain, info) != nil || info.PhoneNumber == "" {
			// The same answer as every other decryption failure.
			return apierr.DecryptFailed
		}
	default:
		return apierr.InvalidRequest.WithMessage("Send code (from the phone button's e.detail.code) or encryptedData and iv.")
	}
	body, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if h.ForwardProfile {
		return h.forward(w, r, next, id, body)
	}
	apierr.WriteRawJSON(w, http.StatusOK, body)
	return nil
}

// session authenticates r and loads its session.
func (h *Handler) session(r *http.Request) (*identity.Identity, *session.Session, error) {
	id, aerr := h.authenticate(r)
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

// forward sends decrypted data to the next handler as a JSON POST with the
// caller's identity; the upstream's answer is what the client gets.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, id *identity.Identity, body []byte) error {
	r.Method = http.MethodPost
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = nil
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.Header.Del("Content-Encoding")
	h.setIdentity(r, id)
	return next.ServeHTTP(w, r)
}

// wechatFailure logs a WeChat error for the operator and maps it for the
// client. Errors only the operator can fix are logged at ERROR.
func (h *Handler) wechatFailure(ctx context.Context, route, appid string, err error) *apierr.Error {
	ae := apierr.FromWeChat(err)
	fix, isConfig := apierr.ConfigErrcodes[ae.WeChatErrcode()]
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

// routeEvents are the audit events of the routes, by path under the
// prefix. Routes not named here are not audited.
var routeEvents = map[string]string{
	"/login":    "login",
	"/refresh":  "refresh",
	"/logout":   "logout",
	"/userinfo": "decrypt",
	"/decrypt":  "decrypt",
	"/phone":    "phone",
}

// audited wraps the route at path (under the prefix) so that each call
// writes one audit entry.
func (h *Handler) audited(path string, fn routeFunc) routeFunc {
	event, ok := routeEvents[path]
	if !ok {
		return fn
	}
	var extra []zap.Field
	if path == "/userinfo" {
		extra = []zap.Field{zap.String("data", "userinfo")}
	}
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		// Who, from the token, read before the route passes the request
		// on without it; a login notes its user itself.
		note := new(audit.Note)
		if raw, n := credential.Bearer(r.Header["Authorization"]); n == 1 {
			if id, verr := h.tokens.VerifyCached(raw, time.Now()); verr == nil {
				*note = audit.Note{AppID: id.AppID, OpenID: id.OpenID, SID: id.SID}
			}
		}
		r = audit.WithNote(r, note)
		err := fn(w, r, next)
		audit.Event(h.audit, r, event, apierr.Result(err), note.AppID, note.OpenID, note.SID, extra...)
		return err
	}
}
