package wechatauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/platform"
	"github.com/caddy-wechat/wechatauth/internal/redisstore"
	"github.com/caddy-wechat/wechatauth/internal/wxpay"
	"github.com/caddy-wechat/wechatauth/wechattest"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(WeChatApp))
	httpcaddyfile.RegisterGlobalOption("wechat", parseWeChatOption)
}

// WeChatApp is the `wechat` app: what the module's handlers share across a
// config (App is one mini program's credentials). Every wechat_auth
// handler loads it (ctx.App("wechat")), so it is there even when the
// config does not name it; Caddy then starts it as it starts the tls app
// the http app loads.
//
// It holds what the handlers share: the apps and their secrets, WeChat's
// API, the session store and the signing keys. A wechat_auth or wechat_api
// that names none of these itself uses the app's; one that has its own
// lines uses only its own. The values are judged once, here.
//
// On each config load it also checks that no wechat_auth is placed where
// it can never run: after a handler that always answers (reverse_proxy,
// respond, file_server, …), in its route, an enclosing one or an earlier
// one. Such a config would pass every request, forged X-WX-OPENID headers
// included, to the upstream without authentication, so it is refused with
// the place and the handler that shadows it. A reverse_proxy behind a
// matcher there gets a warning.
type WeChatApp struct {
	// The mini programs (and other apps) served, with their secrets,
	// as in wechat_auth: a placeholder such as {env.WECHAT_APP_SECRET}
	// keeps a secret out of the config.
	Apps []App `json:"apps,omitempty"`

	// WeChat's API root. Default: https://api.weixin.qq.com
	APIBase string `json:"api_base,omitempty"`

	// Use the process's in-process fake WeChat; no app secret may be
	// given. Never in production.
	Sandbox bool `json:"sandbox,omitempty"`

	// How long to wait for WeChat, token fetch and retries included.
	// Default: 5s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// The session store: empty for the process's memory store, or a
	// redis:// URL, as in wechat_auth.
	Store string `json:"store,omitempty"`

	// The Redis of the session store given by its parts, as in
	// wechat_auth's store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// The HS256 key tokens are signed with, at least 32 bytes; generated
	// and kept in Caddy's storage when empty.
	SigningKey string `json:"signing_key,omitempty"`

	// Earlier signing keys that still verify tokens.
	PreviousSigningKeys []string `json:"previous_signing_keys,omitempty"`

	// The WeChat Pay merchants whose keys wechat_pay and
	// wechat_pay_notify use, named there by mch_id.
	Merchants []Merchant `json:"merchants,omitempty"`

	// WeChat Pay's API root. Default: https://api.mch.weixin.qq.com
	PayAPIBase string `json:"pay_api_base,omitempty"`

	ctx caddy.Context

	merchants    map[string]*payMerchant // by mch_id, keys loaded
	payTransport *http.Transport
	sandboxHolds []string // mch_ids held in the sandbox pool

	// checked is set once the routes were walked for this config.
	checked bool

	// deliveries are the outboxes of this config's event receivers,
	// opened when the app starts.
	deliveries []*delivery

	// pushes are this config's wechat_push handlers (Push.plainTwin).
	pushes []*Push

	// carries write to Redis what the memory store kept, for the sites
	// that moved to Redis (redisstore.Carry): at Start, so that
	// `caddy validate` writes nothing.
	carries []*redisstore.Carry

	// logs are the pooled stores' followers, with this config's logger
	// for each: held from Start to Stop (followingLogger).
	logs []heldLog
	held []*followingLogger // what Start holds, for Stop to release
}

// heldLog is a pooled object's follower and the config's logger for it.
type heldLog struct {
	f   *followingLogger
	log *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (*WeChatApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "wechat",
		New: func() caddy.Module { return new(WeChatApp) },
	}
}

// Provision checks the http app's routes for a wechat_auth that can never
// run. The app is provisioned before any app starts, by `caddy validate`
// too (which never starts apps), so the check refuses such a config in
// `caddy validate`, `caddy run`, `caddy reload` and a load through the
// admin API alike.
//
// The http app is usually half provisioned here (its first wechat_auth is
// what loads this app); its routes are then read in both forms, the
// provisioned handlers and the raw JSON of those still to come. When this
// app is named in the config and provisioned first, asking for the http
// app provisions it whole.
func (a *WeChatApp) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	// The shared values are judged before the routes are read: reading
	// them provisions the handlers, which take these values.
	if a.hasSettings() {
		sh := shared{
			module: "wechat", appsOptional: true, apps: a.Apps, apiBase: a.APIBase, sandbox: a.Sandbox, timeout: a.Timeout,
			storeURL: a.Store, redis: a.Redis, signingKey: a.SigningKey, previousKeys: slices.Clone(a.PreviousSigningKeys),
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
		if _, err := sh.storeConn(); err != nil {
			return err
		}
	}
	if err := a.provisionMerchants(); err != nil {
		return err
	}
	httpApp, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		return nil
	}
	if err != nil {
		return err
	}
	a.checked = true
	problems, warnings := unreachableAuth(httpApp.(*caddyhttp.App))
	if len(problems) > 0 {
		return fmt.Errorf("%s", joinProblems(problems))
	}
	for _, w := range warnings {
		ctx.Logger().Warn(w)
	}
	for _, w := range payBehindAuth(httpApp.(*caddyhttp.App)) {
		ctx.Logger().Warn(w)
	}
	return nil
}

// Start implements caddy.App. The routes were checked in Provision. It
// opens the receivers' delivery outboxes, so events queued before a
// restart are delivered without waiting for the next one to arrive;
// `caddy validate`, which never starts apps, touches no outbox.
func (a *WeChatApp) Start() error {
	logs := slices.Clone(a.logs)
	for _, d := range a.deliveries {
		p, err := d.open(context.Background())
		if err != nil {
			return err
		}
		logs = append(logs, heldLog{p.logs, d.log})
		if p.borrowedLogs != nil {
			logs = append(logs, heldLog{p.borrowedLogs, a.ctx.Logger(Handler{})})
		}
	}
	for _, c := range a.carries {
		c.Start()
	}
	// Only now, with every outbox open: the pooled objects' lines go where
	// this config sends its own while it runs.
	for _, l := range logs {
		l.f.hold(a, l.log)
		a.held = append(a.held, l.f)
	}
	return nil
}

// Stop implements caddy.App. The pooled objects this config held log
// where the newest running config that holds them does (followingLogger).
func (a *WeChatApp) Stop() error {
	for _, f := range a.held {
		f.release(a)
	}
	a.held = nil
	return nil
}

// hasSettings reports whether the app holds shared settings for the
// handlers.
func (a *WeChatApp) hasSettings() bool {
	return len(a.Apps) > 0 || a.APIBase != "" || a.Sandbox || a.Timeout != 0 || a.Store != "" ||
		a.Redis != nil || a.SigningKey != "" || len(a.PreviousSigningKeys) > 0
}

// sharedConfig returns the app's shared settings for a handler that has
// none of its own.
func (a *WeChatApp) sharedConfig() sharedConfig {
	return sharedConfig{
		apps: slices.Clone(a.Apps), APIBase: a.APIBase, Sandbox: a.Sandbox, Timeout: a.Timeout, Store: a.Store,
		Redis: a.Redis, SigningKey: a.SigningKey, PreviousSigningKeys: slices.Clone(a.PreviousSigningKeys),
	}
}

// forHandler returns the shared settings a handler uses, given its own
// lines: those when it has any, else the app's; the two never mix. A
// handler whose only lines name apps by app_id with no secret (app_id
// wx…, a reference) uses the app's settings with just those apps, as the
// app holds them (in sandbox, any app id), and the apps also names that
// the app holds (wechat_auth's web apps, whose secrets it needs).
// unused names the app's settings that a handler with lines of its own
// leaves unused although it does not set them itself (a store given only
// in the global option, say), which its caller warns of.
func (a *WeChatApp) forHandler(own sharedConfig, also ...string) (_ sharedConfig, unused []string) {
	if !a.hasSettings() {
		return own, nil
	}
	if !own.hasLines() {
		return a.sharedConfig(), nil
	}
	refs := own
	refs.apps = nil
	if len(own.apps) == 0 || refs.hasLines() {
		return own, a.unusedBy(own, also...)
	}
	// index is where apps holds the app with that id, or -1.
	index := func(apps []App, id string) int { return slices.IndexFunc(apps, namesApp(id)) }
	picked := make([]App, 0, len(own.apps))
	for _, ref := range own.apps {
		if ref.AppSecret != "" {
			return own, a.unusedBy(own, also...)
		}
		switch i := index(a.Apps, ref.AppID); {
		case i >= 0:
			picked = append(picked, a.Apps[i])
		case a.Sandbox:
			picked = append(picked, App{AppID: ref.AppID})
		default:
			return own, nil // an app without its secret: a config error
		}
	}
	for _, id := range also {
		if i := index(a.Apps, id); id != "" && i >= 0 && index(picked, id) < 0 {
			picked = append(picked, a.Apps[i])
		}
	}
	sc := a.sharedConfig()
	sc.apps = picked
	return sc, nil
}

// unusedBy names the settings the app holds that own, a handler's lines,
// does not set. Its apps count as set only when one of them has its
// secret (app_id alone names an app of the app's, which such a handler
// does not read) and when it holds every app of also the app holds.
func (a *WeChatApp) unusedBy(own sharedConfig, also ...string) []string {
	ownApp := func(id string) bool {
		is := namesApp(id)
		return slices.ContainsFunc(own.apps, func(x App) bool { return is(x) && x.AppSecret != "" })
	}
	appsSet := slices.ContainsFunc(own.apps, func(x App) bool { return x.AppSecret != "" })
	for _, id := range also {
		if id != "" && !ownApp(id) && slices.ContainsFunc(a.Apps, namesApp(id)) {
			appsSet = false
		}
	}
	var names []string
	for _, s := range []struct {
		name      string
		app, mine bool
	}{
		{"app", len(a.Apps) > 0, appsSet},
		{"api_base", a.APIBase != "", own.APIBase != ""},
		{"sandbox", a.Sandbox, own.Sandbox},
		{"timeout", a.Timeout != 0, own.Timeout != 0},
		{"store", a.Store != "" || a.Redis != nil, own.Store != "" || own.Redis != nil},
		{"signing_key", a.SigningKey != "" || len(a.PreviousSigningKeys) > 0, own.SigningKey != "" || len(own.PreviousSigningKeys) > 0},
	} {
		if s.app && !s.mine {
			names = append(names, s.name)
		}
	}
	return names
}

// warnUnused logs, for a handler with lines of its own, the settings of
// the wechat global option it does not use (see forHandler): a store or
// signing key given only there would otherwise be ignored without a word.
func warnUnused(logger *zap.Logger, module string, unused []string) {
	if len(unused) == 0 {
		return
	}
	logger.Warn(module+": this handler has app settings of its own, so it uses none of the wechat global option's; "+
		"these, given only there, do not apply to it: "+strings.Join(unused, ", ")+
		" (give the shared settings in one place: all in the global option, or all in the handler)",
		zap.Strings("unused", unused))
}

// parseWeChatOption reads the `wechat` global option:
//
//	wechat {
//	    app         <appid> <secret>     # repeatable
//	    api_base    <url>
//	    sandbox
//	    timeout     <duration>
//	    store       memory | redis <url> | redis { … }
//	    signing_key <current> [<previous>...]
//	    merchant    <mch_id> { private_key …; serial_no …; api_v3_key …; public_key_id …; public_key … }
//	    pay_api_base <url>
//	}
//
// (app_id and app_secret are read too, as in wechat_auth.)
func parseWeChatOption(d *caddyfile.Dispenser, existing any) (any, error) {
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	if existing != nil {
		// The second block would replace the first whole, and its apps,
		// keys and merchants with it.
		return nil, d.Err("the wechat global option is given twice: write one wechat { … } block")
	}
	var sc sharedConfig
	var merchants []Merchant
	var payAPIBase string
	for d.NextBlock(0) {
		switch d.Val() {
		case "merchant":
			m, err := parseMerchantBlock(d)
			if err != nil {
				return nil, err
			}
			merchants = append(merchants, m)
			continue
		case "pay_api_base":
			if err := oneArg(d, &payAPIBase); err != nil {
				return nil, err
			}
			continue
		}
		shared, err := sc.line(d)
		if err != nil {
			return nil, err
		}
		if !shared {
			return nil, d.Errf("unknown subdirective %q", d.Val())
		}
	}
	apps, err := sc.finish(d)
	if err != nil {
		return nil, err
	}
	app := &WeChatApp{
		Apps: apps, APIBase: sc.APIBase, Sandbox: sc.Sandbox, Timeout: sc.Timeout, Store: sc.Store, Redis: sc.Redis,
		SigningKey: sc.SigningKey, PreviousSigningKeys: sc.PreviousSigningKeys,
		Merchants: merchants, PayAPIBase: payAPIBase,
	}
	return httpcaddyfile.App{Name: "wechat", Value: caddyconfig.JSON(app, nil)}, nil
}

// loadApp loads the `wechat` app for a handler's Provision; it runs the
// app's checks on the config the handler belongs to.
func loadApp(ctx caddy.Context) (*WeChatApp, error) {
	v, err := ctx.App("wechat")
	if err != nil {
		return nil, err
	}
	return v.(*WeChatApp), nil
}

// Merchant is a WeChat Pay merchant (商户) of the wechat app, with the
// values of its merchant console. Each value may be a placeholder, such as
// {env.WECHATPAY_APIV3_KEY} or {file./etc/caddy/apiclient_key.pem}, which
// keeps the key out of the config; keys are read once, when the config
// loads. With sandbox, give only mch_id: the keys are generated and a fake
// WeChat Pay knows them.
type Merchant struct {
	// The merchant number (商户号).
	MchID string `json:"mch_id"`

	// The merchant API private key, apiclient_key.pem (PKCS#8, RSA 2048).
	PrivateKey string `json:"private_key,omitempty"`

	// The serial number of the merchant API certificate (商户API证书序列号).
	SerialNo string `json:"serial_no,omitempty"`

	// The APIv3 key (APIv3密钥), 32 characters.
	APIv3Key string `json:"api_v3_key,omitempty"`

	// The WeChat Pay public key id (PUB_KEY_ID_…). With public_key,
	// answers and callbacks are verified with this key; without both,
	// with the platform certificates fetched from /v3/certificates. Give
	// it during a migration too: both are then accepted.
	PublicKeyID string `json:"public_key_id,omitempty"`

	// The WeChat Pay public key (pub_key.pem, a PUBLIC KEY block).
	PublicKey string `json:"public_key,omitempty"`
}

// payMerchant is a merchant as loaded: its keys and the way to WeChat Pay.
type payMerchant struct {
	*wxpay.Merchant
	base   string
	client *http.Client
	fake   *wechattest.Pay // sandbox only

	refreshMu   sync.Mutex
	lastRefresh time.Time
	refreshing  chan struct{} // closed when the fetch in flight ends; nil when none

	answers wxpay.AnswerLog // the gateway's answers taken lately
}

// certRefreshEvery bounds how often an unknown Wechatpay-Serial makes the
// platform certificates be fetched again.
const certRefreshEvery = time.Minute

// verifyAnswer checks a signed answer or callback. A serial the merchant
// does not know yet (certificates not fetched, or rotated) makes the
// platform certificates be fetched first, at most once a minute.
func (m *payMerchant) verifyAnswer(ctx context.Context, header http.Header, body []byte, now time.Time) error {
	if serial := strings.TrimSpace(header.Get("Wechatpay-Serial")); serial != "" && !m.knows(serial) {
		m.refresh(ctx)
	}
	return m.VerifyNotification(header, body, now)
}

func (m *payMerchant) knows(serial string) bool {
	return serial == m.PublicKeyID() || slices.Contains(m.CertificateSerials(), serial)
}

// refresh fetches the platform certificates again, at most once a
// minute, and waits for that fetch (or the one already in flight) until
// it ends or ctx is done: a caller past its own deadline stops waiting,
// and its answer then fails for lack of time, not as a bad signature.
// The fetch is the merchant's, not the caller's: anyone may post a
// notification naming an unknown serial and hang up, and a fetch cut
// short with it would leave the certificates unfetched for a minute. It
// runs to its own end, at most 10 s. A failure leaves the known
// certificates.
func (m *payMerchant) refresh(ctx context.Context) {
	m.refreshMu.Lock()
	done := m.refreshing
	if done == nil && time.Since(m.lastRefresh) >= certRefreshEvery {
		m.lastRefresh = time.Now()
		ch := make(chan struct{})
		m.refreshing, done = ch, ch
		go func() {
			fetch, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = m.RefreshCertificates(fetch, m.client, m.base)
			m.refreshMu.Lock()
			m.refreshing = nil
			m.refreshMu.Unlock()
			close(ch)
		}()
	}
	m.refreshMu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// hasKeyLines reports whether any key line is given (a sandbox merchant
// takes none).
func (c Merchant) hasKeyLines() bool {
	return c.PrivateKey != "" || c.SerialNo != "" || c.APIv3Key != "" || c.PublicKeyID != "" || c.PublicKey != ""
}

// provisionMerchants loads the merchants' keys, once per config. Every
// error names the merchant and the field, never the key.
func (a *WeChatApp) provisionMerchants() error {
	if a.PayAPIBase != "" {
		u, err := url.Parse(a.PayAPIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("wechat: pay_api_base %q is not an http(s) URL", a.PayAPIBase)
		}
	}
	a.payTransport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	a.merchants = make(map[string]*payMerchant, len(a.Merchants))
	repl := caddy.NewReplacer()
	for _, c := range a.Merchants {
		mchID := strings.TrimSpace(repl.ReplaceKnown(c.MchID, ""))
		if _, dup := a.merchants[mchID]; dup {
			return fmt.Errorf("wechat: merchant %s is configured twice", mchID)
		}
		m, err := a.loadMerchant("wechat", mchID, c, repl)
		if err != nil {
			return err
		}
		a.merchants[mchID] = m
	}
	return nil
}

// loadMerchant reads the keys of merchant mchID; module names whose
// config it is in the errors.
func (a *WeChatApp) loadMerchant(module, mchID string, c Merchant, repl *caddy.Replacer) (*payMerchant, error) {
	pm := &payMerchant{base: a.PayAPIBase, client: newPayClient(a.payTransport)}
	if pm.base == "" {
		pm.base = wxpay.DefaultAPIBase
	}
	var cfg wxpay.Config
	if a.Sandbox {
		if c.hasKeyLines() {
			return nil, fmt.Errorf("%s: merchant %s: sandbox generates the merchant's keys and takes none; remove the key lines or sandbox", module, mchID)
		}
		if mchID == "" || strings.Trim(mchID, "0123456789") != "" {
			return nil, fmt.Errorf("%s: mch_id must be the digits of a merchant number", module)
		}
		sb, err := platform.OpenPaySandbox(mchID)
		if err != nil {
			return nil, fmt.Errorf("%s: merchant %s: sandbox: %w", module, mchID, err)
		}
		a.sandboxHolds = append(a.sandboxHolds, mchID)
		pm.fake, pm.client, pm.base = sb.Pay, sb.Pay.Client(), "http://wechatpay.sandbox"
		cfg = wxpay.Config{
			MchID: mchID, PrivateKey: sb.PrivateKeyPEM, SerialNo: sb.SerialNo, APIv3Key: sb.APIv3Key,
			PublicKeyID: sb.Pay.Keys().PublicKeyID, PublicKey: sb.Pay.Keys().PublicKeyPEM,
		}
	} else {
		cfg = wxpay.Config{
			MchID:       mchID,
			PrivateKey:  repl.ReplaceKnown(c.PrivateKey, ""),
			SerialNo:    strings.TrimSpace(repl.ReplaceKnown(c.SerialNo, "")),
			APIv3Key:    repl.ReplaceKnown(c.APIv3Key, ""),
			PublicKeyID: strings.TrimSpace(repl.ReplaceKnown(c.PublicKeyID, "")),
			PublicKey:   repl.ReplaceKnown(c.PublicKey, ""),
		}
		if c.PrivateKey != "" && cfg.PrivateKey == "" {
			return nil, fmt.Errorf("%s: merchant %s: private_key resolves to nothing; fix its placeholder", module, mchID)
		}
		if c.APIv3Key != "" && cfg.APIv3Key == "" {
			return nil, fmt.Errorf("%s: merchant %s: api_v3_key resolves to nothing; fix its placeholder", module, mchID)
		}
	}
	m, err := wxpay.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", module, strings.TrimPrefix(err.Error(), "wxpay: "))
	}
	pm.Merchant = m
	return pm, nil
}

// handlerMerchant returns the merchant a handler pays as: its own when
// keys has key lines (mch_id then required), else the wechat app's
// merchant of mchID. module names the handler in errors.
func (a *WeChatApp) handlerMerchant(module, mchID string, keys *Merchant) (*payMerchant, error) {
	if keys == nil || !keys.hasKeyLines() {
		return a.merchant(module, mchID)
	}
	repl := caddy.NewReplacer()
	mchID = strings.TrimSpace(repl.ReplaceKnown(mchID, ""))
	if mchID == "" {
		return nil, fmt.Errorf("%s: mch_id is missing: the merchant's key lines need its merchant number", module)
	}
	if name := keys.literalSecret(); name != "" && !a.Sandbox {
		return nil, fmt.Errorf("%s: merchant %s: %s", module, mchID, literalSecretMessage(name))
	}
	return a.loadMerchant(module, mchID, *keys, repl)
}

// merchant returns the loaded merchant of mchID, for a handler's
// Provision; module names the handler in the error.
func (a *WeChatApp) merchant(module, mchID string) (*payMerchant, error) {
	if mchID == "" {
		if len(a.merchants) == 1 {
			for _, m := range a.merchants {
				return m, nil
			}
		}
		return nil, fmt.Errorf("%s: mch_id is missing: name the merchant of the wechat app whose keys to use", module)
	}
	m, ok := a.merchants[mchID]
	if !ok {
		return nil, fmt.Errorf("%s: mch_id %s is not a merchant of the wechat app: add `merchant %s { … }` to the wechat global option", module, mchID, mchID)
	}
	return m, nil
}

// payAppIDs are the appids orders may name: the apps of the wechat app
// (the sandbox app in sandbox mode).
func (a *WeChatApp) payAppIDs() map[string]bool {
	ids := make(map[string]bool, len(a.Apps))
	for _, app := range a.Apps {
		ids[appIDOf(app.AppID)] = true
	}
	if a.Sandbox && len(a.Apps) == 0 {
		ids[sandboxAppID] = true
	}
	return ids
}

// sandboxPay returns the fake WeChat Pay that holds the order of
// prepayID, or nil.
func (a *WeChatApp) sandboxPay(prepayID string) (*wechattest.Pay, wechattest.PayOrder) {
	for _, m := range a.merchants {
		if m.fake == nil {
			continue
		}
		if o, ok := m.fake.OrderByPrepayID(prepayID); ok {
			return m.fake, o
		}
	}
	return nil, wechattest.PayOrder{}
}

// Cleanup gives back the sandbox merchants and closes idle connections
// to WeChat Pay. It also releases what Start held, for a config Caddy
// cancels without stopping its apps (one whose admin settings failed
// after the apps started).
func (a *WeChatApp) Cleanup() error {
	a.Stop()
	for _, id := range a.sandboxHolds {
		platform.ReleasePaySandbox(id)
	}
	a.sandboxHolds = nil
	if a.payTransport != nil {
		a.payTransport.CloseIdleConnections()
	}
	return nil
}

// parseMerchantBlock reads `merchant <mch_id> { … }` of the wechat option.
func parseMerchantBlock(d *caddyfile.Dispenser) (Merchant, error) {
	var m Merchant
	if !d.NextArg() {
		return m, d.Errf("merchant needs its mch_id: merchant <mch_id> { private_key …; serial_no …; api_v3_key …; public_key_id …; public_key … }")
	}
	m.MchID = d.Val()
	if d.NextArg() {
		return m, d.Errf("merchant takes one mch_id and a block")
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return m, d.Errf("merchant %s: %s is given twice", m.MchID, sub)
		}
		seen[sub] = true
		handled, err := merchantLine(d, sub, &m)
		if !handled {
			return m, d.Errf("merchant %s: unknown subdirective %q", m.MchID, sub)
		}
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// literalSecret names the first of a handler's private_key and
// api_v3_key written as it is rather than as a placeholder, or is "". A
// handler's lines are part of the http app's config, which Caddy writes
// whole into its DEBUG log ("adjusted config") before any handler loads:
// there these two keys are taken only as placeholders ({env.*}, {file.*}).
func (c Merchant) literalSecret() string {
	if names := literalFields("private_key", c.PrivateKey, "api_v3_key", c.APIv3Key); len(names) > 0 {
		return names[0]
	}
	return ""
}

func literalSecretMessage(name string) string {
	return name + " is written as it is, and a handler's config is copied into Caddy's DEBUG log: give it as a placeholder, such as {env.WECHATPAY_APIV3_KEY} or {file./etc/caddy/apiclient_key.pem}, or move the merchant into the wechat global option"
}

// warnLiteralSecrets logs one WARN naming the fields, of a handler's own
// lines, that hold a secret written as it is rather than as a
// placeholder: those lines are part of the http app's config, which Caddy
// writes whole into its DEBUG log ("adjusted config"). fields alternate
// name and value; only names are logged. Secrets written that way keep
// working, as they did before pay refused them in its own lines.
func warnLiteralSecrets(log *zap.Logger, module string, fields ...string) {
	if names := literalFields(fields...); len(names) > 0 {
		log.Warn(module+": a secret is written as it is in this handler's lines, and at level DEBUG Caddy logs a handler's config: give it as a placeholder, such as {env.WECHAT_APP_SECRET} or {file./run/secrets/wechat}",
			zap.Strings("fields", names))
	}
}

// literalFields returns the names of the fields, given as name then
// value, whose value is set and written as it is rather than as a
// placeholder.
func literalFields(fields ...string) []string {
	var names []string
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] != "" && !hasPlaceholder(fields[i+1]) {
			names = append(names, fields[i])
		}
	}
	return names
}

// hasPlaceholder reports whether v holds a {…} placeholder.
func hasPlaceholder(v string) bool {
	i := strings.IndexByte(v, '{')
	return i >= 0 && strings.IndexByte(v[i:], '}') > 1
}

// handlerKeyLine reads a merchant key line of wechat_pay's or
// wechat_pay_notify's block as merchantLine does, refusing a private_key
// or api_v3_key written as it is (see literalSecret) while the Caddyfile
// is adapted, before Caddy can log it.
func handlerKeyLine(d *caddyfile.Dispenser, sub string, m *Merchant) (handled bool, err error) {
	handled, err = merchantLine(d, sub, m)
	if handled && err == nil {
		if name := m.literalSecret(); name == sub {
			err = d.Errf("%s", literalSecretMessage(name))
		}
	}
	return handled, err
}

// merchantLine reads the Caddyfile line sub into m when it is one of a
// merchant's key lines; handled is false when it is not.
func merchantLine(d *caddyfile.Dispenser, sub string, m *Merchant) (handled bool, err error) {
	var into *string
	switch sub {
	case "private_key":
		into = &m.PrivateKey
	case "serial_no":
		into = &m.SerialNo
	case "api_v3_key":
		into = &m.APIv3Key
	case "public_key_id":
		into = &m.PublicKeyID
	case "public_key":
		into = &m.PublicKey
	default:
		return false, nil
	}
	return true, oneArg(d, into)
}

// newPayClient is the client of WeChat Pay's API. WeChat Pay does not
// redirect: a redirect is answered as it is, never followed, so that a
// request (an order, with its amounts and payer) goes to no host but the
// configured one.
func newPayClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Interface guards
var (
	_ caddy.App          = (*WeChatApp)(nil)
	_ caddy.Provisioner  = (*WeChatApp)(nil)
	_ caddy.CleanerUpper = (*WeChatApp)(nil)
)
