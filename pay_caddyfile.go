package wechatauth

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func parsePayCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var g PayGateway
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return &g, err
}

// UnmarshalCaddyfile sets up the pay gateway from Caddyfile tokens.
// Syntax:
//
//	wechat_pay [<matcher>] {
//	    mch_id  <mch_id>          # a merchant of the wechat app, or its key lines here:
//	    private_key | serial_no | api_v3_key | public_key_id | public_key <value>
//	    allow   <path>...         # repeatable: /v3/… exact, or ending in /*
//	    timeout <duration>
//	}
func (g *PayGateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch sub := d.Val(); sub {
		case "mch_id":
			if err := oneArg(d, &g.MchID); err != nil {
				return err
			}
		case "allow":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("allow needs one or more paths")
			}
			g.Allow = append(g.Allow, args...)
		case "timeout":
			dur, err := durationLine(d)
			if err != nil {
				return err
			}
			g.Timeout = dur
		default:
			if g.Keys == nil {
				g.Keys = new(Merchant)
			}
			handled, err := handlerKeyLine(d, sub, g.Keys)
			if !handled {
				return d.Errf("unknown subdirective %q", sub)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
