package wechatauth

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
)

func init() {
	caddy.RegisterModule(PayGateway{})
	httpcaddyfile.RegisterHandlerDirective("wechat_pay", parsePayCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("wechat_pay", httpcaddyfile.Before, "respond")
}

// The bounds of what the pay gateway reads: WeChat Pay's requests and
// answers are small JSON documents.
const (
	payMaxBody   = 1 << 20
	payMaxAnswer = 4 << 20
)

// defaultPayTimeout is how long a call to WeChat Pay may take.
const defaultPayTimeout = 10 * time.Second

// PayGateway forwards an upstream's WeChat Pay APIv3 calls with the
// merchant's signature, and returns WeChat Pay's answer only when its
// signature verifies, as WeChat Cloud Hosting's certificate-free pay does:
// the upstream holds no merchant key, certificate or APIv3 key. A JSAPI or
// mini program order's answer gains the `payment` object that
// wx.requestPayment takes, signed.
//
// The gateway pays as the merchant: serve it only on a loopback or private
// address that only your upstreams reach. It answers every request it
// gets.
type PayGateway struct {
	// The merchant of the wechat app whose keys sign the calls; may be
	// left out when the wechat app has one merchant.
	MchID string `json:"mch_id,omitempty"`

	// The merchant's own key lines (private_key, serial_no, api_v3_key,
	// public_key_id, public_key, as in the wechat app's merchant block),
	// for a merchant the wechat app does not hold; mch_id is then
	// required. private_key and api_v3_key only as placeholders
	// ({env.*}, {file.*}): a handler's config is copied into Caddy's
	// DEBUG log. Default: the wechat app's merchant of mch_id.
	Keys *Merchant `json:"keys,omitempty"`

	// The WeChat Pay API paths forwarded: exact (/v3/refund/domestic/refunds)
	// or ending in /* for one or more segments below
	// (/v3/pay/transactions/*). Other paths, and any path holding "..",
	// ";", an encoded '/', '\' or '.', or a control character, are
	// answered 403 api_not_allowed and reach nothing.
	Allow []string `json:"allow,omitempty"`

	// How long to wait for WeChat Pay. Default: 10s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	logger   *zap.Logger
	merchant *payMerchant
	appids   map[string]bool // the apps an order may name
	exact    map[string]bool
	prefixes []string // of /* entries, with the trailing '/'
}

// CaddyModule returns the Caddy module information.
func (PayGateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.wechat_pay",
		New: func() caddy.Module { return new(PayGateway) },
	}
}

// Provision takes the merchant from the wechat app and checks the allow
// list.
func (g *PayGateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	if err := g.checkAllow(); err != nil {
		return err
	}
	if g.Timeout < 0 {
		return fmt.Errorf("wechat_pay: timeout must be a positive duration, not %s", time.Duration(g.Timeout))
	}
	if g.Timeout == 0 {
		g.Timeout = caddy.Duration(defaultPayTimeout)
	}
	app, err := loadApp(ctx)
	if err != nil {
		return err
	}
	if g.merchant, err = app.handlerMerchant("wechat_pay", g.MchID, g.Keys); err != nil {
		return err
	}
	g.appids = app.payAppIDs()
	if err := metrics.Init(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("wechat_pay: metrics: %w", err)
	}
	if g.merchant.fake != nil {
		g.logger.Warn("wechat_pay sandbox is on: calls go to a fake WeChat Pay; never use this in production")
	}
	return nil
}

func (g *PayGateway) checkAllow() error {
	if len(g.Allow) == 0 {
		return fmt.Errorf("wechat_pay: allow lists no path, so nothing would be forwarded: list the WeChat Pay API paths your upstreams call, such as /v3/pay/transactions/*")
	}
	g.exact = make(map[string]bool, len(g.Allow))
	for _, p := range g.Allow {
		base, sub := strings.CutSuffix(p, "/*")
		if !strings.HasPrefix(base, "/v3/") || !payPathOK(base) {
			return fmt.Errorf("wechat_pay: allow %q: a path is written as WeChat Pay documents it, under /v3/, such as /v3/pay/transactions/* or /v3/refund/domestic/refunds", p)
		}
		if sub {
			g.prefixes = append(g.prefixes, base+"/")
		} else {
			g.exact[base] = true
		}
	}
	return nil
}

// allowed returns the allow entry p matches, or "".
func (g *PayGateway) allowed(p string) string {
	if g.exact[p] {
		return p
	}
	for _, pre := range g.prefixes {
		if len(p) > len(pre) && strings.HasPrefix(p, pre) {
			return pre + "*"
		}
	}
	return ""
}

// payPathOK reports whether a request path, as sent, is one WeChat Pay's
// paths could be: segments of letters, digits and _ - . | * @ (an
// out_trade_no's characters), percent-escapes of none of '/', '\', '.',
// ';' or a control character, no empty, "." or ".." segment. Anything else
// is a spelling another server may read as a different path.
func payPathOK(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			segStart = i + 1
			continue
		}
		switch c := p[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '.', c == '|', c == '*', c == '@':
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if v < 0x20 || v >= 0x7f || v == '/' || v == '\\' || v == '.' || v == ';' || v == '%' {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// Interface guards
var (
	_ caddy.Provisioner           = (*PayGateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*PayGateway)(nil)
	_ caddy.Module                = (*PayGateway)(nil)
	_ caddyfile.Unmarshaler       = (*PayGateway)(nil)
)
