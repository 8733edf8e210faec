package wechatauth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/assertion"
	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
)

func init() {
	caddy.RegisterModule(Push{})
	httpcaddyfile.RegisterHandlerDirective("wechat_push", parsePushCaddyfile)
	// Before wechat_auth (which sits just before basic_auth): WeChat's
	// pushes carry no token.
	httpcaddyfile.RegisterDirectiveOrder("wechat_push", httpcaddyfile.After, "try_files")
}

// Push defaults.
const (
	defaultPushMaxAge   = 5 * time.Minute
	defaultPushTimeout  = 4 * time.Second
	defaultPushRetryFor = 24 * time.Hour
	maxPushBody         = 1 << 20
)

// Push receives WeChat's message pushes (消息推送) for one mini program or
// Official Account: it answers the console's URL check, verifies each
// push's signature, decrypts it in safe mode, and delivers the plaintext
// to the upstream at least once, through its restarts and Caddy's, the
// way WeChat Cloud Hosting hands pushes to a container. WeChat is
// answered only once the push is delivered or safely queued. It answers
// every request it gets: give it a path matcher.
type Push struct {
	// The appid whose pushes these are: the trailing appid of every
	// decrypted push must be this one, and the upstream gets it as
	// X-WX-APPID. Default: the wechat app's app, when it has exactly one.
	AppID string `json:"app_id,omitempty"`

	// The console's Token (令牌). Required. Write a placeholder such as
	// {env.WECHAT_PUSH_TOKEN}; it never appears in a log or an answer.
	Token string `json:"token,omitempty"`

	// The console's EncodingAESKey (消息加密密钥), 43 characters, for
	// compatibility and safe mode; then every push must carry Encrypt, and
	// only its decrypted copy is trusted. Omit it in plain mode.
	AESKey string `json:"aes_key,omitempty"`

	// The upstream URL (http:// or https://) each push is POSTed to.
	// Required.
	To string `json:"to,omitempty"`

	// Plain mode only, where the signature does not cover the body: a push
	// whose timestamp is further than this from now is refused, and so is
	// a (timestamp, nonce) seen before. Default: 5m; 0 turns the age check
	// off (pairs are then remembered for 24 h).
	MaxAge *caddy.Duration `json:"max_age,omitempty"`

	// How long one delivery attempt may take; an upstream answering 2xx
	// within it has the push. Its answer body within it is the passive
	// reply. Keep it under WeChat's 5 s. Default: 4s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// How long an undelivered push is retried (first retry within 10 s,
	// then backing off to every 10 minutes) before it is dropped with an
	// ERROR log. Default: 24h
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// Where the outbox and the deduplication records live: empty for the
	// memory store (Caddy's storage: survives a restart of one instance),
	// or a redis:// URL shared by every instance, as in wechat_auth.
	// Default: the wechat app's store.
	Store string `json:"store,omitempty"`

	// The Redis of the store given by its parts, as in wechat_auth's
	// store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// Sign every delivery with the assertion of wechat_auth's `assertion`
	// (an ES256 JWT: sub the sender's openid, aud the appid, 60 s
	// lifetime), so the upstream can accept pushes only from Caddy. The
	// key is wechat_auth's (generated once in Caddy's storage, published
	// at its jwks.json) unless assertion_key gives one.
	Assertion bool `json:"assertion,omitempty"`

	// The header that carries the assertion. Default: X-WX-ASSERTION
	AssertionHeader string `json:"assertion_header,omitempty"`

	// The assertion's private key, a PEM ECDSA P-256 key; use
	// {file./path/key.pem}. Give wechat_auth's, when it has one.
	AssertionKey string `json:"assertion_key,omitempty"`

	token    string
	crypter  *msgcrypt.Crypter // nil in plain mode
	maxAge   time.Duration
	assertor *assertion.Signer
	delivery *delivery
	logger   *zap.Logger
	audit    *zap.Logger

	warnEncrypted *sync.Once // an encrypted push in plain mode was logged (made in Provision)
}

// CaddyModule returns the Caddy module information.
func (Push) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_push",
		New: func() caddy.Module { return new(Push) },
	}
}

// Provision judges the settings and registers the delivery outbox, which
// the wechat app opens when it starts.
func (p *Push) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	p.audit = newAuditLogger(ctx)
	p.warnEncrypted = new(sync.Once)
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if p.AppID == "" && len(app.Apps) == 1 {
		p.AppID = app.Apps[0].AppID
	}
	if p.Store == "" && p.Redis == nil {
		p.Store, p.Redis = app.Store, app.Redis
	}
	if err := p.check(); err != nil {
		return err
	}
	if p.assertor, err = deliverySigner(ctx, "wechat_push", app.Sandbox, p.Assertion, p.AssertionHeader, p.AssertionKey); err != nil {
		return err
	}
	p.delivery, err = openDelivery(ctx, deliverySettings{
		Module: "wechat_push", Kind: "push", Store: p.Store, Redis: p.Redis,
		Timeout: time.Duration(p.Timeout), RetryFor: time.Duration(p.RetryFor),
		Assertion: p.assertor,
	})
	return err
}

// check resolves the placeholders and refuses what cannot work, naming
// the setting but never a secret.
func (p *Push) check() error {
	repl := caddy.NewReplacer()
	resolve := func(v string) string { return strings.TrimSpace(repl.ReplaceKnown(v, "")) }
	p.AppID = resolve(p.AppID)
	p.token = resolve(p.Token)
	aesKey := resolve(p.AESKey)
	to := resolve(p.To)
	switch {
	case p.token == "":
		return errors.New("wechat_push: token is missing (or its placeholder resolves to nothing): give the console's Token, e.g. token {env.WECHAT_PUSH_TOKEN}")
	case p.AppID == "":
		return errors.New("wechat_push: app_id is missing: name the app whose pushes these are (or give the wechat app exactly one app)")
	case !isHTTPURL(to):
		return errors.New("wechat_push: to must be an http:// or https:// URL of the upstream, such as http://127.0.0.1:3000/wechat/push")
	case p.MaxAge != nil && *p.MaxAge < 0:
		return errors.New("wechat_push: max_age must not be negative (0 turns the age check off)")
	case p.Timeout < 0 || p.RetryFor < 0:
		return errors.New("wechat_push: timeout and retry_for must not be negative")
	case p.AESKey != "" && aesKey == "":
		return errors.New("wechat_push: aes_key's placeholder resolves to nothing: give the console's EncodingAESKey (43 characters), or remove the line in plain mode")
	}
	p.To = to
	if aesKey != "" {
		if _, err := msgcrypt.ParseAESKey(aesKey); err != nil {
			// msgcrypt's error gives the length, never the key.
			return fmt.Errorf("wechat_push: aes_key: %w", err)
		}
		c, err := msgcrypt.New(p.token, aesKey, p.AppID)
		if err != nil {
			return fmt.Errorf("wechat_push: %w", err)
		}
		p.crypter = c
	}
	p.maxAge = defaultPushMaxAge
	if p.MaxAge != nil {
		p.maxAge = time.Duration(*p.MaxAge)
	}
	if p.Timeout == 0 {
		p.Timeout = caddy.Duration(defaultPushTimeout)
	}
	if p.RetryFor == 0 {
		p.RetryFor = caddy.Duration(defaultPushRetryFor)
	}
	return nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Cleanup gives back this config's hold on the outbox.
func (p *Push) Cleanup() error {
	if p.delivery == nil {
		return nil
	}
	return p.delivery.close()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Push)(nil)
	_ caddy.CleanerUpper          = (*Push)(nil)
	_ caddyhttp.MiddlewareHandler = (*Push)(nil)
)
