package wechatauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// auditLoggerName is the logger of wechat_auth's audit entries; Caddy
// routes logs by logger name, so the gateway's entries use it too.
const auditLoggerName = "http.handlers.wechat_auth.audit"

// auditLogID names the audit logger to Caddy's logging, which builds a
// logger (and picks the logs it writes to) from a module's ID.
type auditLogID struct{}

func (auditLogID) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: auditLoggerName, New: func() caddy.Module { return auditLogID{} }}
}

func auditLogger(ctx caddy.Context) *zap.Logger { return ctx.Logger(auditLogID{}) }

// auditAPI writes the gateway's audit entry for one call: event api, its
// result, the app, the user when known and Caddy's client IP (which
// honours trusted_proxies). Never a token, key or body.
func auditAPI(log *zap.Logger, r *http.Request, result, appid, openid string) {
	fields := []zap.Field{
		zap.String("event", "api"),
		zap.String("result", result),
		zap.String("path", r.URL.Path),
	}
	if appid != "" {
		fields = append(fields, zap.String("appid", appid))
	}
	if openid != "" {
		fields = append(fields, zap.String("openid", openid))
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	fields = append(fields, zap.String("remote_ip", ip))
	log.Info("api", fields...)
}
