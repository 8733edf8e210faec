package wechatauth

import (
	"fmt"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
)

func init() {
	caddy.RegisterModule(PayNotify{})
	httpcaddyfile.RegisterHandlerDirective("wechat_pay_notify", parsePayNotifyCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_pay_notify", httpcaddyfile.After, "try_files") // before wechat_auth: WeChat Pay sends no token
}

// PayNotify receives WeChat Pay's callbacks (the notify_url of an order or
// refund): it checks WeChat Pay's signature and timestamp, decrypts the
// resource with the APIv3 key, and delivers the notification to `to` with
// the resource replaced by the decrypted object, at least once: WeChat
// Pay is answered 204 only once the upstream took it or it is in the
// durable outbox, which retries it. WeChat Pay's retries of a
// notification (same id) are not delivered again.
//
// The upstream gets a POST with X-WX-SOURCE: wx_paycallback,
// X-WX-EVENT-ID (the notification id, its idempotency key), X-WX-MCHID,
// and X-WX-APPID and X-WX-OPENID when the decrypted object names them.
type PayNotify struct {
	// The merchant of the wechat app whose keys verify and decrypt; may
	// be left out when the wechat app has one merchant.
	MchID string `json:"mch_id,omitempty"`

	// Where notifications are delivered: an http:// or https:// URL of
	// the upstream, which should accept only Caddy's requests (a private
	// listener, or assertion).
	To string `json:"to"`

	// How long one delivery may take; a slower upstream is tried again
	// from the outbox. Default: 4s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// How long an undelivered notification is retried before it is
	// dropped with an ERROR log. Default: 24h
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// The outbox's store, as wechat_auth's: empty for the wechat app's
	// (Caddy's storage with the memory store), or a redis:// URL.
	Store string `json:"store,omitempty"`

	// The outbox's Redis given by its parts, as in wechat_auth's
	// store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// Sign every delivery with an identity assertion (a short-lived
	// ES256 JWT, sub the payer's openid and aud the appid when the
	// notification names them), with wechat_auth's key unless
	// assertion_key gives one, so the upstream can refuse requests that
	// are not Caddy's.
	Assertion bool `json:"assertion,omitempty"`

	// The header that carries the assertion. Default: X-WX-ASSERTION
	AssertionHeader string `json:"assertion_header,omitempty"`

	// The assertion's private key, a PEM ECDSA P-256 key; use
	// {file./path} to keep it out of the config.
	AssertionKey string `json:"assertion_key,omitempty"`

	// backoff, when set, replaces the outbox's retry schedule (tests).
	backoff func(int) time.Duration

	logger   *zap.Logger
	audit    *zap.Logger
	merchant *payMerchant
	delivery *delivery
}

// CaddyModule returns the Caddy module information.
func (PayNotify) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_pay_notify",
		New: func() caddy.Module { return new(PayNotify) },
	}
}

// Provision takes the merchant from the wechat app and registers the
// delivery outbox, which opens when the app starts.
func (n *PayNotify) Provision(ctx caddy.Context) error {
	n.logger = ctx.Logger()
	n.audit = newAuditLogger(ctx)
	if u, err := url.Parse(n.To); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("wechat_pay_notify: to %q is not an http(s) URL: give the upstream's address, such as http://127.0.0.1:3000/pay/notify", n.To)
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"timeout", n.Timeout}, {"retry_for", n.RetryFor}} {
		if d.v < 0 {
			return fmt.Errorf("wechat_pay_notify: %s must be a positive duration, not %s", d.name, time.Duration(d.v))
		}
	}
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if n.merchant, err = app.merchant("wechat_pay_notify", n.MchID); err != nil {
		return err
	}
	store, redis := n.Store, n.Redis
	if store == "" && redis == nil {
		store, redis = app.Store, app.Redis
	}
	signer, err := deliverySigner(ctx, "wechat_pay_notify", app.Sandbox, n.Assertion, n.AssertionHeader, n.AssertionKey, "X-Wx-Mchid")
	if err != nil {
		return err
	}
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_pay_notify: metrics: %w", err)
	}
	n.delivery, err = openDelivery(ctx, deliverySettings{
		Module: "wechat_pay_notify", Kind: "pay_notify", Store: store, Redis: redis,
		Timeout: time.Duration(n.Timeout), RetryFor: time.Duration(n.RetryFor), Backoff: n.backoff,
		Assertion: signer,
	})
	return err
}

// Cleanup gives back this config's hold on the outbox.
func (n *PayNotify) Cleanup() error {
	if n.delivery == nil {
		return nil
	}
	return n.delivery.close()
}

func parsePayNotifyCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var n PayNotify
	err := n.UnmarshalCaddyfile(h.Dispenser)
	return &n, err
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens. Syntax:
//
//	wechat_pay_notify [<matcher>] {
//	    mch_id        <mch_id>         # a merchant of the wechat app
//	    to            <url>            # the upstream
//	    timeout       <duration>
//	    retry_for     <duration>
//	    store         memory | redis <url> | redis { … }
//	    assertion     [<header>]
//	    assertion_key <pem>
//	}
func (n *PayNotify) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch sub := d.Val(); sub {
		case "mch_id":
			err = oneArg(d, &n.MchID)
		case "to":
			err = oneArg(d, &n.To)
		case "timeout":
			n.Timeout, err = durationLine(d)
		case "retry_for":
			n.RetryFor, err = durationLine(d)
		case "store":
			var sc sharedConfig
			if _, err = sc.line(d); err == nil {
				n.Store, n.Redis = sc.Store, sc.Redis
				if n.Store == "" && n.Redis == nil {
					n.Store = "memory"
				}
			}
		case "assertion":
			n.Assertion = true
			if d.NextArg() {
				n.AssertionHeader = d.Val()
			}
			if d.NextArg() {
				return d.Errf("assertion takes at most a header name")
			}
		case "assertion_key":
			err = oneArg(d, &n.AssertionKey)
		default:
			return d.Errf("unknown subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*PayNotify)(nil)
	_ caddy.CleanerUpper          = (*PayNotify)(nil)
	_ caddyhttp.MiddlewareHandler = (*PayNotify)(nil)
	_ caddy.Module                = (*PayNotify)(nil)
	_ caddyfile.Unmarshaler       = (*PayNotify)(nil)
)
