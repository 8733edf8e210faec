package wechatauth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/credential"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// newAuditLogger returns the audit logger, http.handlers.wechat_auth.audit,
// for any module that asks (the handler, the admin API, the gateway): Caddy
// routes logs by logger name, so one `include` sends them all to one file.
func newAuditLogger(ctx caddy.Context) *zap.Logger {
	return ctx.Logger(Handler{}).Named("audit")
}

// auditEvent writes one audit entry: what happened (event), how it ended
// (result: "ok" or the error code answered), who (appid, openid, sid, each
// when known) and from where (remote_ip, Caddy's client IP, which honours
// trusted_proxies). Never pass it a secret, key, code, token, ciphertext or
// phone number.
func auditEvent(l *zap.Logger, r *http.Request, event, result, appid, openid, sid string, extra ...zap.Field) {
	if l == nil {
		return
	}
	fields := make([]zap.Field, 0, 6+len(extra))
	fields = append(fields, zap.String("event", event), zap.String("result", result))
	if appid != "" {
		fields = append(fields, zap.String("appid", appid))
	}
	if openid != "" {
		fields = append(fields, zap.String("openid", openid))
	}
	if sid != "" {
		fields = append(fields, zap.String("sid", sid))
	}
	fields = append(fields, zap.String("remote_ip", clientIP(r)))
	fields = append(fields, extra...)
	l.Info(event, fields...)
}

// clientIP is Caddy's client IP of r (the address a trusted proxy
// forwarded for), or the peer's address outside Caddy's HTTP server.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditResult is the result field of a route that returned err.
func auditResult(err error) string {
	var ae *apierr.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return ae.Code()
	default:
		return "error"
	}
}

// auditNote carries who a route acted for, when the token does not say
// (a login).
type auditNote struct{ appid, openid, sid string }

type auditNoteKey struct{}

// noteAudit records, for the route's audit entry, who the request acts for.
func noteAudit(r *http.Request, appid, openid, sid string) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		*n = auditNote{appid, openid, sid}
	}
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
		note := new(auditNote)
		if raw, n := credential.Bearer(r.Header["Authorization"]); n == 1 {
			if id, verr := h.tokens.VerifyCached(raw, time.Now()); verr == nil {
				*note = auditNote{id.AppID, id.OpenID, id.SID}
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, note))
		err := fn(w, r, next)
		auditEvent(h.audit, r, event, auditResult(err), note.appid, note.openid, note.sid, extra...)
		return err
	}
}
