// Package audit writes the audit log: one entry per login, refresh,
// logout, decryption, phone number, gateway call and admin action, with
// who and from where, never a secret.
package audit

import (
	"context"
	"net"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// Event writes one audit entry: what happened (event), how it ended
// (result: "ok" or the error code answered), who (appid, openid, sid, each
// when known) and from where (remote_ip, Caddy's client IP, which honours
// trusted_proxies). Never pass it a secret, key, code, token, ciphertext or
// phone number.
func Event(l *zap.Logger, r *http.Request, event, result, appid, openid, sid string, extra ...zap.Field) {
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
	fields = append(fields, zap.String("remote_ip", ClientIP(r)))
	fields = append(fields, extra...)
	l.Info(event, fields...)
}

// ClientIP is Caddy's client IP of r (the address a trusted proxy
// forwarded for), or the peer's address outside Caddy's HTTP server.
func ClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Note carries who a route acted for, when the token does not say
// (a login), and the result of a route that answered without an error but
// did not do what its event names (Result, empty otherwise).
type Note struct{ AppID, OpenID, SID, Result string }

type noteKey struct{}

// Noted records, for the route's audit entry, who the request acts for.
func Noted(r *http.Request, appid, openid, sid string) {
	if n, ok := r.Context().Value(noteKey{}).(*Note); ok {
		n.AppID, n.OpenID, n.SID = appid, openid, sid
	}
}

// NotedResult records the result of a route that answers without an error
// but does not do what its event names (a login that logs nobody in).
func NotedResult(r *http.Request, result string) {
	if n, ok := r.Context().Value(noteKey{}).(*Note); ok {
		n.Result = result
	}
}

// WithNote returns r carrying a note that Noted fills in, for the route's
// audit entry.
func WithNote(r *http.Request, n *Note) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), noteKey{}, n))
}
