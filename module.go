// Package wechatauth is a Caddy HTTP handler that puts WeChat Mini Program
// login in front of any backend. It exchanges wx.login codes with WeChat,
// keeps the session_key server-side, issues signed tokens, and forwards
// verified requests with the caller's openid in X-WX-OPENID. It also
// decrypts WeChat's encrypted open data with the stored session_key.
package wechatauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("wechat_auth", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_auth", httpcaddyfile.Before, "basic_auth")
}

// Defaults of the configuration.
const (
	defaultRoutePrefix   = "/wx"
	defaultTokenTTL      = 2 * time.Hour
	defaultSessionTTL    = 72 * time.Hour
	defaultHeaderOpenID  = "X-WX-OPENID"
	defaultHeaderUnionID = "X-WX-UNIONID"
	defaultHeaderAppID   = "X-WX-APPID"
	sandboxAppID         = "wxsandbox0000000"
)

// App is one mini program.
type App struct {
	// The mini program's AppID (wx…), from the admin console.
	AppID string `json:"app_id,omitempty"`
	// The mini program's AppSecret. Write a placeholder such as
	// {env.WECHAT_APP_SECRET} or {file./run/secrets/wechat} rather than the
	// secret itself; it is resolved when the config loads.
	AppSecret string `json:"app_secret,omitempty"`
}

// Handler implements WeChat Mini Program login. It serves the login and
// open-data routes under RoutePrefix, and on every other request verifies
// the Bearer token, removes identity headers the client sent, and sets
// X-WX-OPENID, X-WX-APPID and X-WX-UNIONID for the next handler. Requests
// without a valid token get 401 unless Optional is set.
//
// The placeholders {http.auth.user.id} (openid), {http.auth.user.unionid}
// and {http.auth.user.appid} are set for verified requests.
type Handler struct {
	// The mini programs served. With several, a login names its app
	// with an `appid` field.
	Apps []App `json:"apps,omitempty"`

	// WeChat's API root. Default: https://api.weixin.qq.com
	APIBase string `json:"api_base,omitempty"`

	// Use an in-process fake WeChat instead of the real one: any login
	// code works and the same code always gives the same openid. For demos
	// and tests; no app secret may be given. A warning is logged at start.
	Sandbox bool `json:"sandbox,omitempty"`

	// The path under which the login and open-data routes are served.
	// Default: /wx
	RoutePrefix string `json:"route_prefix,omitempty"`

	// The HS256 key tokens are signed with, at least 32 bytes. Use a
	// placeholder such as {env.WECHAT_AUTH_SIGNING_KEY}. When empty, a random key
	// is generated once and kept in Caddy's storage, so it survives
	// restarts and is shared by instances that share storage. Every token
	// names its key in a `kid` header (an HMAC of the key, revealing
	// nothing of it).
	SigningKey string `json:"signing_key,omitempty"`

	// Earlier signing keys, still accepted for verification but never
	// used to sign: to rotate, put the new key in signing_key and the old
	// one here until every token it signed has expired (token_ttl), then
	// remove it. Each is at least 32 bytes; placeholders work as for
	// signing_key. Only with signing_key.
	PreviousSigningKeys []string `json:"previous_signing_keys,omitempty"`

	// How often a generated signing key is replaced by a new one. The
	// replaced key keeps verifying until every token it signed has
	// expired, so nobody is logged out. Instances sharing Caddy's storage
	// rotate once between them and pick up each other's keys. Only
	// without signing_key. Default: never.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// How long a token is valid. Default: 2h
	TokenTTL caddy.Duration `json:"token_ttl,omitempty"`

	// How long a session (and its session_key, needed to decrypt open
	// data) is kept after login. Default: 72h
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`

	// Let requests without a valid token through, with no identity
	// headers, instead of answering 401. The upstream then decides.
	Optional bool `json:"optional,omitempty"`

	// Paths that pass on without a token, in Caddy's path matcher syntax:
	// an exact path, a prefix such as /public/*, or a suffix such as
	// *.png. Client identity headers are removed there as everywhere, and
	// a valid token, when sent, still sets the identity. Serve public
	// paths with this option, not by routing them around wechat_auth: a
	// request that never reaches wechat_auth keeps whatever identity
	// headers the client sent. Only a plain path is public: one holding
	// ';', '#', '?', '\', '%' (once decoded), %2F, a control character, or a
	// "." or ".." segment in any spelling needs a token like any other.
	PublicPaths caddyhttp.MatchPath `json:"public_paths,omitempty"`

	// Send decrypted user info and phone numbers to the next handler (as
	// the JSON body of a POST, with the identity headers) instead of back
	// to the client; the upstream's answer goes to the client.
	ForwardProfile bool `json:"forward_profile,omitempty"`

	// The header that carries the caller's openid upstream. Default:
	// X-WX-OPENID, as WeChat Cloud Hosting sets it. A client's own copy,
	// in any spelling, is always removed.
	HeaderOpenID string `json:"header_openid,omitempty"`

	// The header that carries the caller's unionid upstream, when WeChat
	// gave one. Default: X-WX-UNIONID.
	HeaderUnionID string `json:"header_unionid,omitempty"`

	// The header that carries the mini program's appid upstream. Default:
	// X-WX-APPID.
	HeaderAppID string `json:"header_appid,omitempty"`

	// How many sessions the in-memory store holds (the L1 in front of
	// Redis too). One store serves every wechat_auth site of the process,
	// so this is a process-wide figure. Default: 100000
	MaxSessions int `json:"max_sessions,omitempty"`

	// A shared session store for several Caddy instances, as a URL:
	// redis://[user:password@]host:port[/db], rediss:// for TLS, or
	// unix:///path. Write the password as a placeholder such as
	// {env.REDIS_PASSWORD}. Default: in-memory ("memory").
	//
	// With Redis, sessions and revocations (logouts) are shared by every
	// instance using the same Redis and signing key, so those instances
	// must share the signing key (or Caddy's storage, where a generated
	// one is kept). Session keys are encrypted in Redis under a random
	// data key, itself kept in Redis wrapped under each signing key, so
	// rotating the signing key loses no session. Proxied requests never wait for
	// Redis; a route that needs it (login, logout, or a refresh or
	// decryption for a session this instance has not cached) answers 503
	// store_unavailable within 2 s when Redis does not answer. Turn on
	// Redis persistence (AOF or RDB). Caddy refuses to start when Redis
	// cannot be reached, rather than accept tokens it cannot know are
	// logged out.
	//
	// For Redis behind Sentinels, a Redis Cluster, or a server whose
	// options do not fit a URL, leave this empty (or "redis") and set
	// redis instead.
	Store string `json:"store,omitempty"`

	// The Redis of the shared session store given by its parts rather
	// than as a URL in store: a single server, a primary watched by
	// Sentinels (master_name), or a Redis Cluster (several addrs). Sessions,
	// logouts, timeouts and encryption work the same in every mode.
	Redis *RedisConfig `json:"redis,omitempty"`

	// How long to wait for WeChat. Default: 5s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Sign the verified identity: every verified request, and every answer
	// of {route_prefix}/verify, carries an ES256 JWT (kid in its header)
	// with iss "wechat_auth", sub the openid, aud the appid, unionid when
	// known, iat, and exp at most 60 s after iat and no later than the token's (a
	// fresh one is signed every 30 s while the token is in use). Upstreams verify it
	// against the public key served at {route_prefix}/jwks.json, so a
	// request that reaches them by another path cannot claim an identity.
	Assertion bool `json:"assertion,omitempty"`

	// The header that carries the assertion. Default: X-WX-ASSERTION. A
	// client's own copy, in any spelling, is always removed.
	AssertionHeader string `json:"assertion_header,omitempty"`

	// The assertion's private key, a PEM ECDSA P-256 key in PKCS#8 or SEC 1
	// form; write it as {file./path/key.pem}. When empty, a key is
	// generated once and kept in Caddy's storage (the sandbox's apart), so
	// instances that share storage publish the same key.
	AssertionKey string `json:"assertion_key,omitempty"`

	// WeChat login for web pages: Official Account pages opened inside
	// WeChat, a PC site's QR login, and the mini program's <web-view>.
	// Logins end in a cookie session that every request may carry instead
	// of a Bearer token; the upstream gets the same identity headers, with
	// X-WX-SOURCE: wx_web. Off unless set.
	Web *WebConfig `json:"web,omitempty"`

	shared // the settings and holds wechat_auth shares with wechat_api

	platform platform.Platform  // logins and, when it is a platform.Phoner, phone numbers
	fake     *wechattest.Server // sandbox only
	app      *WeChatApp         // its sandbox merchants serve /sandbox/pay
	wxConn   *platform.Conn     // released in Cleanup
	inFlight *inFlight          // routes being served: Cleanup waits for them
	users    *session.Users
	audit    *zap.Logger
	routes   routeTable
	uses     []storeUse        // what this handler holds its store for (see pooledStore)
	strip    idheader.Stripper // strips the identity headers a client sent

	web          *webLogin             // nil unless Web
	assertion    *assertion.Signer     // nil unless Assertion
	verifyRemove idheader.RemovalLists // what a verify answer names for Envoy to remove
}

// WebConfig is the web login of wechat_auth. Its apps are WeChat apps
// other than the mini program, each with its secret given like any app's
// (an `app <appid> <secret>` line, or the wechat app's); mini program
// logins never use them.
type WebConfig struct {
	// The Official Account (a service account) whose authorization page
	// logs in browsers inside WeChat (a User-Agent with MicroMessenger).
	// Its console's 网页授权域名 must be this site's host.
	OAApp string `json:"oa_app,omitempty"`

	// The website app (Open Platform) whose QR page logs in browsers
	// outside WeChat. Its authorization callback domain must be this
	// site's host.
	QRApp string `json:"qr_app,omitempty"`

	// The scope asked inside WeChat: snsapi_base (silent, the default;
	// WeChat may give no unionid) or snsapi_userinfo (WeChat asks the
	// user; the login also asks sns/userinfo for a unionid the code
	// exchange left out). The QR login's scope is always snsapi_login.
	Scope string `json:"scope,omitempty"`

	// Where a login may send the browser afterwards: absolute URL
	// prefixes such as https://www.example.com/ (scheme and host compared
	// exactly, the path at a segment boundary). Their origins may also send
	// cookie-authenticated writes (see csrf_refused). At least one.
	ReturnTo []string `json:"return_to,omitempty"`

	// The session cookie's name. Default: __Host-wx_session on HTTPS,
	// wx_session on plain HTTP. A __Host- or __Secure- name works only on
	// HTTPS.
	Cookie string `json:"cookie,omitempty"`

	// Where WeChat's authorization pages are (connect/oauth2/authorize and
	// connect/qrconnect). Default: https://open.weixin.qq.com, or in
	// sandbox this site's {route_prefix}/sandbox. The code exchange uses
	// api_base. On any base but WeChat's own, a login's user, decline and
	// snapshot parameters are passed on to the page (the fake's knobs).
	OpenBase string `json:"open_base,omitempty"`

	// written holds oa_app and qr_app as the config writes them, before
	// their placeholders are replaced.
	written [2]string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// RedisConfig is the Redis of a shared session store given by its parts
// (in the Caddyfile, `store redis { … }`), for a Redis behind Sentinels or
// a Redis Cluster, or a single server. It mirrors go-redis's
// UniversalOptions: several addrs make a Cluster, master_name makes them
// Sentinels, one address alone is a single server.
type RedisConfig struct {
	// Where Redis is, as host:port. One address: a single server (or, with
	// cluster, one node of a Cluster). Several: nodes of a Redis Cluster
	// (any of them; the others are found). With master_name: the Sentinels.
	// A placeholder may hold several addresses, separated by spaces or
	// commas.
	Addrs []string `json:"addrs,omitempty"`

	// The name the Sentinels know the primary by (sentinel monitor
	// <name> …). When set, addrs are Sentinels, and the store follows
	// whichever server they name the primary.
	MasterName string `json:"master_name,omitempty"`

	// A single address is a node of a Redis Cluster, such as a managed
	// service's configuration endpoint. Not with master_name.
	Cluster bool `json:"cluster,omitempty"`

	// The ACL user to log in as (AUTH <username> <password>). Default:
	// Redis's "default" user.
	Username string `json:"username,omitempty"`

	// The Redis password. Write a placeholder such as
	// {env.REDIS_PASSWORD}; it is resolved when the config loads and never
	// shown in an error or a log.
	Password string `json:"password,omitempty"`

	// The ACL user on the Sentinels, when they require one. Only with
	// master_name.
	SentinelUsername string `json:"sentinel_username,omitempty"`

	// The Sentinels' password (their requirepass), when they have one;
	// Redis's own password is password. Only with master_name.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// The database number. Default: 0. A Redis Cluster has only 0.
	DB int `json:"db,omitempty"`

	// Connect with TLS (to Redis, and to the Sentinels), verifying the
	// server's certificate against the system's trusted roots and its
	// address's host name. SSL_CERT_FILE or SSL_CERT_DIR add a private CA.
	TLS bool `json:"tls,omitempty"`
}

// conn resolves the placeholders of c, checks it, and says how to reach
// the Redis it describes. Errors name the field at fault, never a
// password.
func (c RedisConfig) conn(repl *caddy.Replacer) (*redisstore.Conn, error) {
	var err error
	resolve := func(name, v string) string {
		if v == "" || err != nil {
			return v
		}
		out := strings.TrimSpace(repl.ReplaceKnown(v, ""))
		if out == "" {
			err = fmt.Errorf("%s resolves to nothing: fix its placeholder, or remove it", name)
		}
		return out
	}
	var addrs []string
	for _, a := range c.Addrs {
		addrs = append(addrs, strings.FieldsFunc(resolve("addrs", a), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })...)
	}
	r := RedisConfig{
		Addrs:            addrs,
		MasterName:       resolve("master_name", c.MasterName),
		Cluster:          c.Cluster,
		Username:         resolve("username", c.Username),
		Password:         resolve("password", c.Password),
		SentinelUsername: resolve("sentinel_username", c.SentinelUsername),
		SentinelPassword: resolve("sentinel_password", c.SentinelPassword),
		DB:               c.DB,
		TLS:              c.TLS,
	}
	if err != nil {
		return nil, err
	}
	return redisstore.Dial(redisstore.Options(r))
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Module                = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
