package wechatauth

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/wechat"
)

func init() {
	caddy.RegisterModule(APIGateway{})
	httpcaddyfile.RegisterHandlerDirective("wechat_api", parseGatewayCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_api", httpcaddyfile.Before, "basic_auth")
}

// defaultGatewayMaxBody is the largest request body the gateway forwards
// unless max_body says otherwise.
const defaultGatewayMaxBody = 10 << 20

// APIGateway forwards an upstream's calls to WeChat's server APIs with the
// app's access token added, as WeChat Cloud Hosting's open interface
// service does: the upstream needs neither the AppSecret nor a token cache
// of its own, and every instance of it shares the one stable token of this
// process. It also serves the APIs that need a user's session_key
// (checksession, resetusersessionkey, a virtual payment's user signature)
// with the key wechat_auth keeps, which never leaves the server.
//
// The gateway spends the app's quota and sends messages as the app: serve
// it only on a loopback or private address that only your upstreams reach.
// It answers every request it gets.
type APIGateway struct {
	// The mini programs served, as in wechat_auth. With several, a call
	// names its app with the from_appid query parameter or the X-WX-APPID
	// header.
	Apps []App `json:"apps,omitempty"`

	// WeChat's API root. Default: https://api.weixin.qq.com
	APIBase string `json:"api_base,omitempty"`

	// Use the process's in-process fake WeChat (the one wechat_auth's
	// sandbox uses) instead of the real one; no app secret may be given.
	Sandbox bool `json:"sandbox,omitempty"`

	// How long to wait for WeChat, token fetch and retries included.
	// Default: 5s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// The session store the session-key services read, as in
	// wechat_auth: empty for the process's memory store, or the same
	// redis:// URL (then also the same signing_key) as the wechat_auth
	// that keeps the sessions.
	Store string `json:"store,omitempty"`

	// The Redis of the session store given by its parts (Sentinel,
	// Cluster), as in wechat_auth's store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// The signing key of the wechat_auth whose Redis sessions are read,
	// needed only with a Redis store; as in wechat_auth, a generated one
	// is read from Caddy's storage when empty.
	SigningKey string `json:"signing_key,omitempty"`

	// wechat_auth's earlier signing keys, as there: any of them finds the
	// Redis data key.
	PreviousSigningKeys []string `json:"previous_signing_keys,omitempty"`

	// The WeChat API paths forwarded, matched exactly (such as
	// /cgi-bin/message/subscribe/send); "*" forwards every path written
	// as WeChat's are (letters, digits, '_', '-', and '.' inside a
	// segment), others being answered 400 invalid_request. Paths not
	// listed are answered 403 api_not_allowed. /cgi-bin/token and
	// /cgi-bin/stable_token are never forwarded: the gateway never hands
	// out a token. The session-key services (/wxa/checksession,
	// /wxa/resetusersessionkey, /wechat_auth/user_signature) must be
	// listed too.
	Allow []string `json:"allow,omitempty"`

	// The largest request body forwarded, in bytes; larger ones are
	// answered 413. Default: 10 MiB
	MaxBody int64 `json:"max_body,omitempty"`

	logger   *zap.Logger
	audit    *zap.Logger
	sh       shared // the app, secret, key and store settings, provisioned as wechat_auth's
	wxConn   *platform.Conn
	wx       *wechat.Client
	allowAll bool
	allowed  map[string]bool
}

// CaddyModule returns the Caddy module information.
func (APIGateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_api",
		New: func() caddy.Module { return new(APIGateway) },
	}
}

// Provision resolves the apps' secrets the way wechat_auth does, takes
// the process's shared token caches and session store, and checks the
// allow list.
func (g *APIGateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	g.audit = newAuditLogger(ctx)
	if g.MaxBody == 0 {
		g.MaxBody = defaultGatewayMaxBody
	}
	if err := g.checkAllow(); err != nil {
		return err
	}
	// A gateway that names none of the shared settings uses the wechat
	// app's; the two never mix.
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if app.hasSettings() && !g.hasSharedLines() {
		sc := app.sharedConfig()
		g.Apps, g.APIBase, g.Sandbox, g.Timeout = sc.apps, sc.APIBase, sc.Sandbox, sc.Timeout
		g.Store, g.Redis, g.SigningKey, g.PreviousSigningKeys = sc.Store, sc.Redis, sc.SigningKey, sc.PreviousSigningKeys
	}
	// The settings wechat_auth shares with the gateway are judged and
	// provisioned by the same code as there, errors naming wechat_api.
	sh := &g.sh
	*sh = shared{
		module: "wechat_api", logger: g.logger,
		apps: g.Apps, apiBase: g.APIBase, sandbox: g.Sandbox, timeout: g.Timeout,
		storeURL: g.Store, redis: g.Redis, signingKey: g.SigningKey, previousKeys: g.PreviousSigningKeys,
		tokenTTL:           caddy.Duration(defaultTokenTTL),
		configErrorsLogged: new(sync.Map),
	}
	if sh.timeout == 0 {
		sh.timeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if sh.sandbox && len(sh.apps) == 0 {
		sh.apps = []App{{AppID: sandboxAppID}}
	}
	if err := sh.resolve(); err != nil {
		return err
	}
	if err := sh.check(); err != nil {
		return err
	}
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_api: metrics: %w", err)
	}
	if store := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(sh.storeURL, "")); sh.redis != nil || (store != "" && store != "memory") {
		// Sessions in Redis are found through the signing keys, which
		// unwrap the data key that seals them.
		ring, err := sh.provisionKeys(ctx)
		if err != nil {
			return err
		}
		sh.tokens = token.New(nil, token.IssuerProduction, time.Duration(sh.tokenTTL), sh.secrets)
		sh.tokens.SetRing(ring)
	}
	if err := sh.provisionStore(ctx); err != nil {
		return err
	}
	conn, err := platform.Open(platform.Settings{Base: g.APIBase, Secrets: sh.secrets, Timeout: time.Duration(sh.timeout), Sandbox: g.Sandbox})
	if err != nil {
		return fmt.Errorf("wechat_api: WeChat client: %w", err)
	}
	g.wxConn, g.wx = conn, conn.Client
	if g.Sandbox {
		g.logger.Warn("wechat_api sandbox is on: calls go to a fake WeChat; never use this in production")
	}
	return nil
}

// hasSharedLines reports whether the gateway names any shared setting of
// its own; if not, it uses the wechat app's.
func (g *APIGateway) hasSharedLines() bool {
	return len(g.Apps) > 0 || g.APIBase != "" || g.Sandbox || g.Timeout != 0 || g.Store != "" ||
		g.Redis != nil || g.SigningKey != "" || len(g.PreviousSigningKeys) > 0
}

// tokenPaths are never forwarded, in any spelling.
var tokenPaths = map[string]bool{"/cgi-bin/token": true, "/cgi-bin/stable_token": true}

// isTokenPath reports whether p, cleaned and in lower case, is a token
// endpoint.
func isTokenPath(p string) bool {
	return tokenPaths[strings.ToLower(path.Clean("/"+p))]
}

// isTokenPathWithSuffix reports whether p is a token endpoint with a
// suffix such as ".json" on its last segment, which some servers ignore.
func isTokenPathWithSuffix(p string) bool {
	i := strings.LastIndexByte(p, '/')
	if j := strings.IndexByte(p[i+1:], '.'); j > 0 {
		return isTokenPath(p[:i+1+j])
	}
	return false
}

// plainAPIPath reports whether p is written the way WeChat's API paths
// are: segments of letters, digits, '_', '-' and '.', none empty, none
// "." or "..", none ending in a dot. Anything else (';', a control
// character, NUL, a space, '#', '~', a backslash, "//", "/./") is a
// spelling another server may read as a different path, a token endpoint
// included, and is refused.
func plainAPIPath(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if seg == "" || seg[len(seg)-1] == '.' {
				return false // empty, ".", ".." or a trailing dot
			}
			segStart = i + 1
			continue
		}
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

func (g *APIGateway) checkAllow() error {
	if len(g.Allow) == 0 {
		return fmt.Errorf("wechat_api: allow lists no path, so nothing would be forwarded: list the WeChat API paths your upstreams call, or * for all")
	}
	if g.MaxBody < 0 {
		return fmt.Errorf("wechat_api: max_body must be positive")
	}
	g.allowed = make(map[string]bool, len(g.Allow))
	for _, p := range g.Allow {
		switch {
		case p == "*":
			g.allowAll = true
		case !strings.HasPrefix(p, "/") || path.Clean(p) != p || !plainAPIPath(p):
			return fmt.Errorf("wechat_api: allow %q: a path is written as WeChat documents it, such as /wxa/msg_sec_check", p)
		case isTokenPath(p):
			return fmt.Errorf("wechat_api: allow %q: the token endpoints are never forwarded (the gateway never hands out a token)", p)
		default:
			g.allowed[p] = true
		}
	}
	return nil
}

// Cleanup releases this config's hold on the store and token caches.
func (g *APIGateway) Cleanup() error {
	g.wxConn.Close()
	return g.sh.release()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*APIGateway)(nil)
	_ caddy.CleanerUpper          = (*APIGateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIGateway)(nil)
	_ caddy.Module                = (*APIGateway)(nil)
	_ caddyfile.Unmarshaler       = (*APIGateway)(nil)
)
