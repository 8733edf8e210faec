package wechatauth

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

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
	defaultPushMaxAge = 5 * time.Minute
	maxPushBody       = 1 << 20
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
	// {env.WECHAT_PUSH_TOKEN}: this module never logs it, but a value
	// written in the config itself is in Caddy's DEBUG log of the config.
	Token string `json:"token,omitempty"`

	// The console's EncodingAESKey (消息加密密钥), 43 characters, for
	// compatibility and safe mode; then every push must carry Encrypt, and
	// only its decrypted copy is trusted. Omit it in plain mode. Write a
	// placeholder, as for the token.
	AESKey string `json:"aes_key,omitempty"`

	// Plain mode only, where the signature does not cover the body: a push
	// whose timestamp is further than this from now is refused, and so is
	// a signature seen before. Default: 5m; 0 turns the age check off
	// (signatures are then remembered for 24 h).
	MaxAge *caddy.Duration `json:"max_age,omitempty"`

	DeliveryConfig

	token   string
	crypter *msgcrypt.Crypter // nil in plain mode
	maxAge  time.Duration
	logger  *zap.Logger
	audit   *zap.Logger

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
	if err := p.check(); err != nil {
		return err
	}
	return p.DeliveryConfig.open(ctx, app, "wechat_push", "push")
}

// check resolves the placeholders and refuses what cannot work, naming
// the setting but never a secret.
func (p *Push) check() error {
	repl := caddy.NewReplacer()
	resolve := func(v string) string { return strings.TrimSpace(repl.ReplaceKnown(v, "")) }
	p.AppID = resolve(p.AppID)
	p.token = resolve(p.Token)
	aesKey := resolve(p.AESKey)
	switch {
	case p.token == "":
		return errors.New("wechat_push: token is missing (or its placeholder resolves to nothing): give the console's Token, e.g. token {env.WECHAT_PUSH_TOKEN}")
	case p.AppID == "":
		return errors.New("wechat_push: app_id is missing: name the app whose pushes these are (or give the wechat app exactly one app)")
	case p.MaxAge != nil && *p.MaxAge < 0:
		return errors.New("wechat_push: max_age must not be negative (0 turns the age check off)")
	case p.AESKey != "" && aesKey == "":
		return errors.New("wechat_push: aes_key's placeholder resolves to nothing: give the console's EncodingAESKey (43 characters), or remove the line in plain mode")
	}
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
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Push)(nil)
	_ caddy.CleanerUpper          = (*Push)(nil)
	_ caddyhttp.MiddlewareHandler = (*Push)(nil)
)
