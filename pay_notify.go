package wechatauth

import (
	"fmt"

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

	// The merchant's own key lines (private_key, serial_no, api_v3_key,
	// public_key_id, public_key, as in the wechat app's merchant block),
	// for a merchant the wechat app does not hold; mch_id is then
	// required. private_key and api_v3_key only as placeholders
	// ({env.*}, {file.*}): a handler's config is copied into Caddy's
	// DEBUG log. Default: the wechat app's merchant of mch_id.
	Keys *Merchant `json:"keys,omitempty"`

	DeliveryConfig

	logger   *zap.Logger
	audit    *zap.Logger
	merchant *payMerchant
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
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if n.merchant, err = app.handlerMerchant("wechat_pay_notify", n.MchID, n.Keys); err != nil {
		return err
	}
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_pay_notify: metrics: %w", err)
	}
	return n.DeliveryConfig.open(ctx, app, "wechat_pay_notify", "pay_notify", "X-Wx-Mchid")
}

func parsePayNotifyCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var n PayNotify
	err := n.UnmarshalCaddyfile(h.Dispenser)
	return &n, err
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens. Syntax:
//
//	wechat_pay_notify [<matcher>] {
//	    mch_id        <mch_id>         # a merchant of the wechat app, or its key lines here:
//	    private_key | serial_no | api_v3_key | public_key_id | public_key <value>
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
		default:
			var handled bool
			if handled, err = n.DeliveryConfig.line(d, sub); handled {
				break
			}
			if n.Keys == nil {
				n.Keys = new(Merchant)
			}
			if handled, err = handlerKeyLine(d, sub, n.Keys); !handled {
				return d.Errf("unknown subdirective %q", sub)
			}
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
