package wechatauth

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/idheader"
	"github.com/caddy-wechat/wechatauth/internal/keyring"
	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/internal/token"
	"github.com/caddy-wechat/wechatauth/internal/weblogin"
	"github.com/caddy-wechat/wechatauth/wechat"
	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"
)

// provisionKeys sets up the codec's keys: the configured ones, held in the
// process's pool (one ring per key set, whichever handlers use it), or the
// generated ring kept in Caddy's storage, which is then watched.
func (h *shared) provisionKeys(ctx caddy.Context) (*keyring.Ring, error) {
	if h.signingKey != "" {
		secrets := [][]byte{[]byte(h.signingKey)}
		for _, k := range h.previousKeys {
			secrets = append(secrets, []byte(k))
		}
		ring, name, err := keyring.Hold(secrets...)
		if err != nil {
			return nil, h.errorf("signing keys: %w", err)
		}
		h.ringName = name
		return ring, nil
	}
	name := keyring.SigningKeyName
	if h.sandbox {
		name = keyring.SigningKeyNameSandbox
	}
	rotation := time.Duration(h.keyRotation)
	every := token.WatchEvery(rotation)
	g := &keyring.Generated{
		Storage:  ctx.Storage(),
		Name:     name,
		Rotation: rotation,
		// A token signed with a key just retired lives token_ttl; an
		// instance that has not read the ring again yet may still sign
		// with it for one watch interval more.
		Keep: time.Duration(h.tokenTTL) + 2*every + time.Minute,
		TTL:  time.Duration(h.tokenTTL),
	}
	sr, err := g.Current(ctx, time.Now())
	if err != nil {
		return nil, h.errorf("signing keys from Caddy's storage: %w", err)
	}
	h.keyWatch = token.NewWatch(g, every, h.logger)
	return sr.Ring(), nil
}

// keyedStore is a store that keeps a data key wrapped under each signing
// key (Redis): it must learn every new key, so that an instance holding
// only that key can still open the sessions.
type keyedStore interface {
	AddSigningKeys(ctx context.Context, ring *keyring.Ring) error
}

var _ keyedStore = (*redisstore.Store)(nil)

// watchKeys hands the keys to the store and starts the watch of generated
// keys.
func (h *shared) watchKeys() error {
	if h.tokens == nil {
		return nil // a gateway on the memory store signs and seals nothing
	}
	ks, _ := h.store.(keyedStore)
	addKeys := func(ring *keyring.Ring) {
		if ks == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisstore.OpTimeout)
		defer cancel()
		if err := ks.AddSigningKeys(ctx, ring); err != nil {
			h.logger.Warn("the session store's data key could not be wrapped under the new signing key; it is tried again when the keys next change or Caddy restarts", zap.Error(err))
		}
	}
	addKeys(h.tokens.Ring())
	if h.keyWatch != nil {
		h.keyWatch.Start(h.tokens, addKeys)
	}
	return nil
}

// Provision sets defaults, resolves secrets, and connects the session store
// and the WeChat client.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.inFlight = new(inFlight)
	// First, so that a config refused below keeps the series on /metrics
	// (Caddy's admin endpoint then reads the refused config's registry).
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_auth: metrics: %w", err)
	}
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	h.app = app
	own := h.ownShared()
	secrets := []string{"assertion_key", h.AssertionKey}
	if own.hasLines() && !h.Sandbox {
		secrets = append(sharedSecretFields(h.Apps, h.Store, h.Redis, h.SigningKey, h.PreviousSigningKeys), secrets...)
	}
	warnLiteralSecrets(ctx.Logger(), "wechat_auth", secrets...)
	var webApps []string
	if h.Web != nil {
		if err := h.Web.resolveApps(); err != nil {
			return err
		}
		webApps = []string{h.Web.OAApp, h.Web.QRApp}
	}
	sc, unused := app.forHandler(own, webApps...)
	warnUnused(ctx.Logger(), "wechat_auth", unused)
	h.Apps, h.APIBase, h.Sandbox, h.Timeout = sc.apps, sc.APIBase, sc.Sandbox, sc.Timeout
	h.Store, h.Redis, h.SigningKey, h.PreviousSigningKeys = sc.Store, sc.Redis, sc.SigningKey, sc.PreviousSigningKeys
	h.logger = ctx.Logger()
	h.audit = newAuditLogger(ctx)
	h.configErrorsLogged = new(sync.Map)
	h.setDefaults()
	if err := h.resolveSecrets(); err != nil {
		return err
	}
	if err := h.checkConfig(); err != nil {
		return err
	}
	if err := h.PublicPaths.Provision(ctx); err != nil {
		return fmt.Errorf("wechat_auth: public: %w", err)
	}
	ring, err := h.provisionKeys(ctx)
	if err != nil {
		return err
	}
	issuer := token.IssuerProduction
	if h.Sandbox {
		issuer = token.IssuerSandbox
	}
	h.tokens = token.New(nil, issuer, time.Duration(h.TokenTTL), h.secrets)
	h.tokens.SetRing(ring)
	if err := h.provisionAssertion(ctx); err != nil {
		return err
	}

	if err := h.provisionStore(ctx, h.app); err != nil {
		return err
	}
	h.provisionUsers()

	conn, err := platform.Open(platform.Settings{
		Base:    h.APIBase,
		Secrets: h.secrets,
		Timeout: time.Duration(h.Timeout),
		Sandbox: h.Sandbox,
	})
	if err != nil {
		return fmt.Errorf("wechat_auth: WeChat client: %w", err)
	}
	h.wxConn, h.fake = conn, conn.Fake
	h.platform = platform.WeChat{Client: conn.Client}
	if h.Sandbox {
		h.logger.Warn("wechat_auth sandbox is on: logins use a fake WeChat and any code is accepted; never use this in production")
	}
	if err := h.provisionWeb(); err != nil {
		return err
	}
	h.verifyRemove = idheader.NewRemovalLists(h.verifyHeaders())
	h.routes = h.newRoutes()
	ttl := max(time.Duration(h.TokenTTL), time.Duration(h.SessionTTL))
	for appid := range h.secrets {
		h.uses = append(h.uses, storeUse{appid, ttl})
	}
	h.pooled.hold(h.uses)
	return nil
}

func (h *Handler) setDefaults() {
	// Unset values take their defaults; negative durations and a prefix
	// without its leading '/' are left for checkConfig to refuse.
	if h.RoutePrefix == "" {
		h.RoutePrefix = defaultRoutePrefix
	}
	if strings.HasPrefix(h.RoutePrefix, "/") {
		h.RoutePrefix = "/" + strings.Trim(h.RoutePrefix, "/")
	}
	if h.TokenTTL == 0 {
		h.TokenTTL = caddy.Duration(defaultTokenTTL)
	}
	if h.SessionTTL == 0 {
		h.SessionTTL = caddy.Duration(defaultSessionTTL)
	}
	if h.HeaderOpenID == "" {
		h.HeaderOpenID = defaultHeaderOpenID
	}
	if h.HeaderUnionID == "" {
		h.HeaderUnionID = defaultHeaderUnionID
	}
	if h.HeaderAppID == "" {
		h.HeaderAppID = defaultHeaderAppID
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(wechat.DefaultTimeout)
	}
	if h.Sandbox && len(h.Apps) == 0 {
		h.Apps = []App{{AppID: sandboxAppID}}
	}
	if h.Sandbox && h.Web != nil {
		// The web apps need no secret in sandbox either. The list may be
		// the wechat app's, shared with other handlers: append to a copy.
		h.Apps = slices.Clip(h.Apps)
		for _, appid := range []string{h.Web.OAApp, h.Web.QRApp} {
			if appid != "" && !slices.ContainsFunc(h.Apps, namesApp(appid)) {
				h.Apps = append(h.Apps, App{AppID: appid})
			}
		}
	}
	// Canonical names: later handlers (header_up, placeholders) look
	// headers up by their canonical form.
	h.HeaderOpenID = http.CanonicalHeaderKey(h.HeaderOpenID)
	h.HeaderUnionID = http.CanonicalHeaderKey(h.HeaderUnionID)
	h.HeaderAppID = http.CanonicalHeaderKey(h.HeaderAppID)
	// Names under x-wx- are stripped by their prefix already; listing
	// them again would cost every request a few comparisons per header.
	h.strip = idheader.Stripper{}
	for _, name := range []string{h.HeaderOpenID, h.HeaderUnionID, h.HeaderAppID} {
		h.strip.Add(name)
	}
}

// resolve replaces {env.*} and {file.*} placeholders in the secrets.
// The resolved values live only in memory; the config keeps what the
// operator wrote.
func (h *shared) resolve() error {
	repl := caddy.NewReplacer()
	h.secrets = make(map[string]string, len(h.apps))
	for i, app := range h.apps {
		appid := appIDOf(app.AppID)
		if appid == "" {
			return h.errorf("app_id of app %d is empty", i+1)
		}
		if problem := appIDProblem(appid); problem != "" {
			return h.errorf("app_id of app %d %s; app lines take the AppID first, then the secret", i+1, problem)
		}
		// Errors name an app as the config writes it: what a placeholder
		// resolves to is not repeated.
		if _, dup := h.secrets[appid]; dup {
			return h.errorf("app %s is configured twice", app.AppID)
		}
		switch {
		case h.sandbox && app.AppSecret != "":
			return h.errorf("sandbox is set together with an app_secret for %s: sandbox uses a fake WeChat and takes no secret; remove one of them", app.AppID)
		case h.sandbox:
			h.secrets[appid] = "sandbox-secret"
		default:
			secret := strings.TrimSpace(repl.ReplaceKnown(app.AppSecret, ""))
			if secret == "" {
				return h.errorf("app_secret for %s is missing or resolves to nothing (set app_secret, e.g. {env.WECHAT_APP_SECRET}, or use sandbox)", app.AppID)
			}
			h.secrets[appid] = secret
		}
	}
	if h.signingKey != "" {
		h.signingKey = repl.ReplaceKnown(h.signingKey, "")
		if h.signingKey == "" {
			return h.errorf("signing_key resolves to nothing; remove it to have a key generated, or fix its placeholder")
		}
	}
	for i, k := range h.previousKeys {
		h.previousKeys[i] = repl.ReplaceKnown(k, "")
		if h.previousKeys[i] == "" {
			return h.errorf("previous signing key %d resolves to nothing; fix its placeholder", i+1)
		}
	}
	return nil
}

// checkConfig reports configuration errors that name the problem.
func (h *shared) check() error {
	if len(h.apps) == 0 && !h.appsOptional {
		return h.errorf("no app configured: set app_id and app_secret (or use sandbox)")
	}
	if h.signingKey != "" && len(h.signingKey) < keyring.MinSigningKey {
		return h.errorf("signing_key is %d bytes; it must be at least %d", len(h.signingKey), keyring.MinSigningKey)
	}
	if len(h.previousKeys) > 0 && h.signingKey == "" {
		return h.errorf("previous signing keys are set without signing_key: name the key that signs first")
	}
	for i, k := range h.previousKeys {
		if len(k) < keyring.MinSigningKey {
			return h.errorf("previous signing key %d is %d bytes; it must be at least %d", i+1, len(k), keyring.MinSigningKey)
		}
	}
	if h.keyRotation < 0 {
		return h.errorf("key_rotation must be a positive duration, not %s", time.Duration(h.keyRotation))
	}
	// The ring keeps every key whose tokens may still be valid: about
	// token_ttl / key_rotation of them, each rewritten in storage.
	if rot := time.Duration(h.keyRotation); rot > 0 && (rot < time.Second || rot < time.Duration(h.tokenTTL)/maxRingKeys) {
		return h.errorf("key_rotation %s: rotate at most every second, and at most %d times per token_ttl (%s), which the key ring would have to hold; every few days is usual (720h is a month)", rot, maxRingKeys, time.Duration(h.tokenTTL))
	}
	if h.keyRotation > 0 && h.signingKey != "" {
		return h.errorf("key_rotation rotates generated keys only; with signing_key, rotate by moving the old key to the previous keys (signing_key <new> <old>)")
	}
	if h.apiBase != "" {
		u, err := url.Parse(h.apiBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return h.errorf("api_base %q is not an http(s) URL", h.apiBase)
		}
	}
	if h.timeout < 0 {
		return h.errorf("timeout must be a positive duration, not %s", time.Duration(h.timeout))
	}
	if err := unitSlip("timeout", h.timeout, time.Millisecond); err != nil {
		return h.errorf("%v", err)
	}
	return nil
}

// checkConfig reports configuration errors that name the problem.
func (h *Handler) checkConfig() error {
	h.takeShared()
	if err := h.shared.check(); err != nil {
		return err
	}
	if h.MaxSessions < 0 {
		return fmt.Errorf("wechat_auth: max_sessions must be positive")
	}
	if h.MaxSessions > session.MaxSessionsLimit {
		return fmt.Errorf("wechat_auth: max_sessions is at most %d (its cache would take more memory than a process should); with more users, use store redis, which keeps every session whatever its cache holds", session.MaxSessionsLimit)
	}
	if !strings.HasPrefix(h.RoutePrefix, "/") {
		return fmt.Errorf("wechat_auth: route_prefix must start with '/': %q", h.RoutePrefix)
	}
	if !plainPrefix(h.RoutePrefix) {
		return fmt.Errorf("wechat_auth: route_prefix %q: write a plain path such as /wx or /api/auth, its segments of letters, digits, '-', '_', '.' and '~', none of them \".\" or \"..\"", h.RoutePrefix)
	}
	// timeout is judged with the settings wechat_auth shares (shared.check).
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"token_ttl", h.TokenTTL}, {"session_ttl", h.SessionTTL}} {
		if d.v < 0 {
			return fmt.Errorf("wechat_auth: %s must be a positive duration, not %s", d.name, time.Duration(d.v))
		}
		if err := unitSlip(d.name, d.v, time.Second); err != nil {
			return fmt.Errorf("wechat_auth: %w", err)
		}
	}
	repl := caddy.NewReplacer()
	for _, p := range h.PublicPaths {
		// Placeholders other than env, file and system ones are left
		// for the request, as Caddy's path matcher does.
		resolved := repl.ReplaceKnown(p, "")
		if resolved == "" {
			return fmt.Errorf("wechat_auth: public: %q matches nothing (empty, or a placeholder that resolves to nothing); write /path, /prefix/* or *suffix", p)
		}
		if resolved[0] != '/' && resolved[0] != '*' && resolved[0] != '{' {
			return fmt.Errorf("wechat_auth: public: %q matches no request path, which starts with '/'; write /path, /prefix/* or *suffix", p)
		}
	}
	seen := map[string]bool{http.CanonicalHeaderKey(idheader.Source): true}
	for _, name := range []string{h.HeaderOpenID, h.HeaderUnionID, h.HeaderAppID} {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("wechat_auth: %q is not a valid header name", name)
		}
		c := http.CanonicalHeaderKey(name)
		if reservedHeaders[c] {
			return fmt.Errorf("wechat_auth: %s cannot carry an identity: the request needs it for itself (name another header, such as X-User-Id)", name)
		}
		if seen[c] {
			return fmt.Errorf("wechat_auth: %s is named for two identity headers (header_openid, header_unionid, header_appid and X-WX-SOURCE are each their own)", name)
		}
		seen[c] = true
	}
	return nil
}

// maxRingKeys bounds how many generated keys key_rotation may keep in the
// ring at once.
const maxRingKeys = 100

// plainPrefix reports whether a route prefix ("/" or "/a/b", as
// setDefaults leaves it) is made of segments of RFC 3986's unreserved
// characters, none of them "." or "..": a request path matches it as
// written, with nothing a client, Caddy or a proxy reads another way.
func plainPrefix(p string) bool {
	if p == "/" {
		return true
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.~", c)) {
				return false
			}
		}
	}
	return true
}

// reservedHeaders are request headers that cannot carry an identity: the
// credential wechat_auth removes, and what net/http and the upstream need
// to read the request itself.
var reservedHeaders = map[string]bool{
	"Authorization": true, "Cookie": true, "Host": true, "Content-Length": true,
	"Content-Type": true, "Content-Encoding": true, "Transfer-Encoding": true,
	"Connection": true, "Upgrade": true, "Te": true, "Trailer": true, "Expect": true,
}

// provisionStore takes the session store from the usage pool, so sessions
// outlive config reloads. There is one memory store per process, and one
// Redis store per Redis and deployment: handlers whose signing keys share
// none never share one, since each finds the key that seals the
// session_keys kept in Redis through its own signing keys, while a key
// rotation keeps its store (redisStoreKey). A Redis is named by a hash of
// its URL or block, passwords included.
func (h *shared) provisionStore(ctx caddy.Context, app *WeChatApp) error {
	conn, err := h.storeConn()
	if err != nil {
		return err
	}
	var newStore func() (caddy.Destructor, error)
	// The store is wechat_auth's, whichever module made it or follows it:
	// one module's logger, so that a log that includes it gets its lines.
	storeLog := ctx.Logger(Handler{})
	logs, log := newFollowingLogger(storeLog)
	if conn == nil {
		h.storeKey = "memory"
		newStore = func() (caddy.Destructor, error) {
			return session.NewMemory(h.maxSessions, ctx.Storage())
		}
	} else {
		ring := h.tokens.Ring()
		h.storeKey = redisStoreKey(conn, ring)
		newStore = func() (caddy.Destructor, error) {
			return redisstore.New(conn, ring, h.maxSessions, log)
		}
	}
	val, loaded, err := stores.LoadOrNew(h.storeKey, func() (caddy.Destructor, error) {
		st, err := newStore()
		if err != nil {
			return nil, err
		}
		return &pooledStore{Store: st.(session.Store), logs: logs}, nil
	})
	if err != nil {
		h.storeKey = ""
		return h.errorf("session store: %w", err)
	}
	h.pooled = val.(*pooledStore)
	h.store = h.pooled.Store
	if loaded {
		h.store.Reuse(h.maxSessions, ctx.Storage())
	}
	// Its lines go where this config sends its own while it runs.
	if app != nil {
		app.logs = append(app.logs, heldLog{h.pooled.logs, storeLog})
	}
	// What the memory store kept for these apps holds here before the
	// config serves, and is written to Redis once it runs.
	if rs, ok := h.store.(*redisstore.Store); ok {
		if c := rs.HoldMemoryStore(ctx.Storage(), h.appIDs()); c != nil {
			app.carries = append(app.carries, c)
		}
	}
	return h.watchKeys()
}

// storeConn judges the store settings and says how to reach the Redis
// they name, or nil for the memory store. It connects to nothing.
func (h *shared) storeConn() (*redisstore.Conn, error) {
	repl := caddy.NewReplacer()
	raw := strings.TrimSpace(repl.ReplaceKnown(h.storeURL, ""))
	var conn *redisstore.Conn
	var err error
	switch {
	case raw == "" && strings.TrimSpace(h.storeURL) != "":
		// Quietly the memory store, instances would stop sharing
		// sessions and logouts.
		return nil, h.errorf("store %s resolves to nothing: set it, or write store memory", h.storeURL)
	case h.redis != nil && raw != "" && raw != "redis":
		return nil, h.errorf("store: Redis is given both as a URL (or memory) and as a redis block; keep one")
	case h.redis != nil:
		conn, err = h.redis.conn(repl)
	case raw == "redis":
		return nil, h.errorf("store redis: give a redis:// URL or a redis block")
	case raw != "" && raw != "memory":
		conn, err = redisstore.ConnFromURL(raw)
	}
	if err != nil {
		return nil, h.errorf("store redis: %w", err)
	}
	return conn, nil
}

// appIDs are the apps the handler serves.
func (h *shared) appIDs() []string {
	return slices.Sorted(maps.Keys(h.secrets))
}

// redisStoreKey names the store of a Redis and a set of signing keys in
// the usage pool. A key rotation (signing_key NEW OLD, then NEW, or a
// generated key replaced) keeps the store of the keys it shares one with:
// a new store per rotation would start with an empty L1 and, when the old
// one is cleaned up, lose the logouts it still had to write to Redis.
func redisStoreKey(conn *redisstore.Conn, ring *keyring.Ring) string {
	prefix := "redis\x00" + conn.ID + "\x00"
	key := prefix + ring.Signer().Kid
	stores.Range(func(k, v any) bool {
		if rs, ok := v.(*pooledStore).Store.(*redisstore.Store); ok && strings.HasPrefix(k.(string), prefix) && rs.SharesKey(ring) {
			key = k.(string)
			return false
		}
		return true
	})
	return key
}

// stores holds the session stores across config reloads: a new config is
// provisioned before the old one is cleaned up, so the count never drops to
// zero during a reload.
var stores = caddy.NewUsagePool()

// Cleanup releases this config's hold on the session store.
func (h *Handler) Cleanup() error {
	return h.inFlight.close(h.logger, func() error {
		h.pooled.release(h.uses)
		h.uses = nil
		h.wxConn.Close()
		return h.shared.release()
	})
}

// provisionUsers takes the user records of the store.
func (h *Handler) provisionUsers() {
	if us, ok := h.store.(session.UserStore); ok {
		h.users = us.Users()
	} else {
		h.users = session.NewUsers()
	}
}

// newAuditLogger returns the audit logger, http.handlers.wechat_auth.audit,
// for any module that asks (the handler, the admin API, the gateway): Caddy
// routes logs by logger name, so one `include` sends them all to one file.
func newAuditLogger(ctx caddy.Context) *zap.Logger {
	return ctx.Logger(Handler{}).Named("audit")
}

// shared are the settings wechat_auth and wechat_api both take (the apps
// and their secrets, the session store and the signing keys that find its
// sessions) and what provisioning them holds. One set of methods judges
// and provisions them for both modules, whose errors name the module.
type shared struct {
	module string // names the module in errors
	logger *zap.Logger

	// appsOptional: settings without an app are fine (the wechat app
	// holding only a store for wechat_push, or merchants); a handler that
	// needs an app refuses on its own.
	appsOptional bool

	apps         []App
	apiBase      string
	sandbox      bool
	timeout      caddy.Duration
	storeURL     string
	redis        *RedisConfig
	signingKey   string
	previousKeys []string
	keyRotation  caddy.Duration
	tokenTTL     caddy.Duration
	maxSessions  int

	secrets            map[string]string // appid → secret, placeholders resolved
	tokens             *token.Codec
	keyWatch           *token.Watch // generated keys only
	ringName           string       // configured keys: the ring's name in keyring's pool
	store              session.Store
	storeKey           string
	pooled             *pooledStore // the store's entry in the pool
	configErrorsLogged *sync.Map    // WeChat errcodes already logged at ERROR
}

// errorf is an error of the module's configuration.
func (h *shared) errorf(format string, args ...any) error {
	return fmt.Errorf(h.module+": "+format, args...)
}

// release gives back the holds: the key watch or the configured keys'
// ring, and the session store.
func (h *shared) release() error {
	h.keyWatch.Stop()
	keyring.Release(h.ringName)
	h.ringName = ""
	if h.storeKey != "" {
		_, err := stores.Delete(h.storeKey)
		h.storeKey = "" // a second call releases nothing more
		return err
	}
	return nil
}

// sharedSecretFields lists, name then value, the secrets a handler's own
// shared lines may hold, for warnLiteralSecrets.
func sharedSecretFields(apps []App, store string, rc *RedisConfig, signingKey string, previous []string) []string {
	fields := []string{"signing_key", signingKey}
	for _, a := range apps {
		fields = append(fields, "app_secret", a.AppSecret)
	}
	for _, k := range previous {
		fields = append(fields, "previous_signing_keys", k)
	}
	return append(fields, storeSecretFields(store, rc)...)
}

// storeSecretFields lists, name then value, the passwords of a store given
// in a handler's lines, for warnLiteralSecrets.
func storeSecretFields(store string, rc *RedisConfig) []string {
	var fields []string
	if u, err := url.Parse(store); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		fields = append(fields, "store (the URL's password)", pw)
	}
	if rc != nil {
		fields = append(fields, "password", rc.Password, "sentinel_password", rc.SentinelPassword)
	}
	return fields
}

// ownShared returns the shared settings the handler names itself.
func (h *Handler) ownShared() sharedConfig {
	return sharedConfig{
		apps: h.Apps, APIBase: h.APIBase, Sandbox: h.Sandbox, Timeout: h.Timeout, Store: h.Store,
		Redis: h.Redis, SigningKey: h.SigningKey, PreviousSigningKeys: h.PreviousSigningKeys,
	}
}

// takeShared copies the Handler's shared settings into h.shared.
func (h *Handler) takeShared() {
	h.module = "wechat_auth"
	h.apps, h.apiBase, h.sandbox, h.timeout = h.Apps, h.APIBase, h.Sandbox, h.Timeout
	h.storeURL, h.redis, h.signingKey, h.previousKeys = h.Store, h.Redis, h.SigningKey, h.PreviousSigningKeys
	h.keyRotation, h.tokenTTL, h.maxSessions = h.KeyRotation, h.TokenTTL, h.MaxSessions
}

// appIDProblem says what keeps appid, what an app line resolved to, from
// being an AppID, or "" when nothing does. An AppID is wx and 16 more
// letters and digits; any name of up to 32 letters, digits, '.', '-' and
// '_' passes (a fake WeChat's apps may be named otherwise), but not one
// of an AppSecret's form, 32 hexadecimal characters. So the AppSecret, a
// base64 key or an EncodingAESKey written in an appid's place (app's two
// arguments swapped, app_id naming the secret's variable) is refused
// without being repeated, before it could reach a log line or
// X-WX-APPID. A secret of an appid's form (a push Token, an alphanumeric
// APIv3 key) passes: errors name apps as the config writes them.
func appIDProblem(appid string) string {
	if len(appid) == 32 && strings.Trim(appid, "0123456789abcdefABCDEF") == "" {
		return "has the form of an AppSecret (32 hexadecimal characters), not of an AppID (wx…)"
	}
	if len(appid) > 32 || strings.Trim(appid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
		return "is not an AppID (wx and 16 letters and digits, as the console shows it; it is not repeated here in case it is a secret)"
	}
	return ""
}

// resolveApps replaces the placeholders of oa_app and qr_app and judges
// what they name as appids; written keeps the lines as the config writes
// them, for errors.
func (c *WebConfig) resolveApps() error {
	c.written = [2]string{c.OAApp, c.QRApp}
	for _, a := range []struct {
		what string
		id   *string
	}{{"oa_app", &c.OAApp}, {"qr_app", &c.QRApp}} {
		if *a.id == "" {
			continue
		}
		appid := appIDOf(*a.id)
		if appid == "" {
			return fmt.Errorf("wechat_auth: web: %s %s resolves to nothing; fix its placeholder", a.what, *a.id)
		}
		if problem := appIDProblem(appid); problem != "" {
			return fmt.Errorf("wechat_auth: web: %s %s", a.what, problem)
		}
		*a.id = appid
	}
	return nil
}

// appIDOf is the appid an app_id, app, oa_app or qr_app line names, its
// {env.*} and {file.*} placeholders replaced: two lines name one app when
// their appIDOf agree, however each is written.
func appIDOf(s string) string {
	return strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(s, ""))
}

// namesApp returns whether an app is the one id names, id resolved once.
func namesApp(id string) func(App) bool {
	id = appIDOf(id)
	return func(x App) bool { return appIDOf(x.AppID) == id }
}

// resolveSecrets replaces {env.*} and {file.*} placeholders in the secrets
// and signing keys (see shared.resolve).
func (h *Handler) resolveSecrets() error {
	h.takeShared()
	err := h.shared.resolve()
	h.SigningKey = h.signingKey
	return err
}

// pooledStore is a session store in the pool with what the wechat_auth
// handlers holding it use it for: the admin API finds the stores of an app
// by ranging the pool, as reverse_proxy's admin API finds its upstreams.
type pooledStore struct {
	session.Store
	mu   sync.Mutex
	uses map[storeUse]int // how many handlers use the store so

	once *weblogin.KindedStore // web states, handoffs and codes seen, when the store keeps none (onceStore)
	logs *followingLogger      // its lines go where the config that took it last sends its own
}

// storeUse is a handler's use of a store: an app it serves, and how long
// the handler's tokens and sessions live.
type storeUse struct {
	appid string
	ttl   time.Duration
}

// Destruct closes the store once no config holds it.
func (p *pooledStore) Destruct() error {
	if d, ok := p.Store.(caddy.Destructor); ok {
		return d.Destruct()
	}
	return nil
}

// hold records uses of the store.
func (p *pooledStore) hold(uses []storeUse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.uses == nil {
		p.uses = make(map[storeUse]int)
	}
	for _, u := range uses {
		p.uses[u]++
	}
}

// release forgets uses hold recorded.
func (p *pooledStore) release(uses []storeUse) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range uses {
		if p.uses[u]--; p.uses[u] <= 0 {
			delete(p.uses, u)
		}
	}
}

// serves reports whether a handler serving appid uses the store, and the
// longest ttl of those that do.
func (p *pooledStore) serves(appid string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ttl time.Duration
	found := false
	for u := range p.uses {
		if u.appid == appid {
			ttl, found = max(ttl, u.ttl), true
		}
	}
	return ttl, found
}

// inUse reports whether any wechat_auth handler uses the store.
func (p *pooledStore) inUse() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.uses) > 0
}

// provisionWeb judges the web block and readies the web login; its apps
// must be among the configured apps (their secrets), except in sandbox,
// where they are added.
func (h *Handler) provisionWeb() error {
	c := h.Web
	if c == nil {
		return nil
	}
	if c.OAApp == "" && c.QRApp == "" {
		return fmt.Errorf("wechat_auth: web: name an oa_app (logins inside WeChat), a qr_app (QR logins outside), or both")
	}
	for _, a := range []struct{ what, appid, written string }{{"oa_app", c.OAApp, c.written[0]}, {"qr_app", c.QRApp, c.written[1]}} {
		if a.appid == "" {
			continue
		}
		if _, ok := h.secrets[a.appid]; !ok {
			return fmt.Errorf("wechat_auth: web: %s %s has no secret: add `app %s <secret>` (in wechat_auth or the wechat app)", a.what, a.written, a.written)
		}
	}
	if c.OAApp != "" && c.OAApp == c.QRApp {
		return fmt.Errorf("wechat_auth: web: oa_app and qr_app are one app; an Official Account and a website app are two")
	}
	scope := c.Scope
	switch scope {
	case "":
		scope = "snsapi_base"
	case "snsapi_base", "snsapi_userinfo":
	default:
		return fmt.Errorf("wechat_auth: web: scope must be snsapi_base or snsapi_userinfo, not %q", c.Scope)
	}
	if len(c.ReturnTo) == 0 {
		return fmt.Errorf("wechat_auth: web: return_to needs at least one URL prefix, such as https://www.example.com/")
	}
	rt, err := weblogin.NewReturnTo(c.ReturnTo)
	if err != nil {
		return fmt.Errorf("wechat_auth: web: %w", err)
	}
	if c.Cookie != "" {
		if err := weblogin.CheckCookieName(c.Cookie, true); err != nil {
			return fmt.Errorf("wechat_auth: web: cookie %q: %w", c.Cookie, err)
		}
	}
	openBase := strings.TrimSuffix(c.OpenBase, "/")
	if openBase != "" {
		u, err := url.Parse(openBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("wechat_auth: web: open_base %q is not an http(s) URL", c.OpenBase)
		}
	} else if !h.Sandbox {
		openBase = defaultOpenBase
	}
	auth, ok := h.platform.(platform.WebAuthorizer)
	if !ok {
		return fmt.Errorf("wechat_auth: web: the platform has no web login")
	}
	once, ok := h.store.(weblogin.OnceStore)
	if ok {
		once = redisOnce{once}
	} else {
		once = h.pooled.onceStore()
	}
	cookieNames := []string{weblogin.SessionCookieHTTPS, weblogin.SessionCookieHTTP}
	if c.Cookie != "" {
		cookieNames = []string{c.Cookie}
	}
	h.web = &webLogin{
		oaApp: c.OAApp, qrApp: c.QRApp, scope: scope, cookieNames: cookieNames,
		returnTo: rt, firstReturnTo: c.ReturnTo[0], origins: rt.Origins(),
		cookie: c.Cookie, openBase: openBase,
		knobs: openBase != defaultOpenBase,
		once:  once, auth: auth,
	}
	return nil
}

// redisOnce is a session store's one-time values, its "already stored"
// answered as the weblogin.ErrExists the routes test for.
type redisOnce struct{ weblogin.OnceStore }

func (o redisOnce) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	err := o.OnceStore.PutOnce(ctx, key, value, ttl)
	if errors.Is(err, redisstore.ErrOnceExists) {
		return weblogin.ErrExists
	}
	return err
}

// defaultOpenBase is where WeChat's authorization pages are.
const defaultOpenBase = "https://open.weixin.qq.com"

// onceStore returns the store of one-time values (web states, handoff
// tickets) beside a store that keeps none itself (memory): one per
// pooled store, so every config of the process shares it across reloads.
func (p *pooledStore) onceStore() weblogin.OnceStore {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.once == nil {
		p.once = weblogin.NewKindedStore(maxOnceValues, nil, onceKinds...)
	}
	return p.once
}

// maxOnceValues bounds the one-time values of each kind kept in memory:
// logins begun and not finished within their 10 minutes, handoff links
// not yet opened, codes seen. Beyond it the oldest of the kind is dropped
// (its login must begin again), never the new one refused; a flood of one
// kind (logins begun need no credential) leaves the others alone.
const maxOnceValues = 100_000

// onceKinds are the kinds of one-time values, each bounded on its own.
var onceKinds = []string{
	strings.TrimSuffix(stateKeyPrefix, ":"),
	strings.TrimSuffix(handoffKeyPrefix, ":"),
	strings.TrimSuffix(codeKeyPrefix, ":"),
}
