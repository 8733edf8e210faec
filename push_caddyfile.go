package wechatauth

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func parsePushCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var p Push
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return &p, err
}

// UnmarshalCaddyfile sets up the receiver from Caddyfile tokens. Syntax:
//
//	wechat_push [<matcher>] {
//	    app_id        <appid>
//	    token         <token>             # {env.WECHAT_PUSH_TOKEN}
//	    aes_key       <EncodingAESKey>    # omit in plain mode
//	    to            <url>
//	    max_age       <duration>          # 0: off
//	    timeout       <duration>
//	    retry_for     <duration>
//	    store         memory | redis <url> | redis { … }
//	    assertion     [<header>]
//	    assertion_key <pem>               # {file./path/key.pem}
//	}
func (p *Push) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch sub := d.Val(); sub {
		case "app_id":
			err = oneArg(d, &p.AppID)
		case "token":
			err = oneArg(d, &p.Token)
		case "aes_key":
			err = oneArg(d, &p.AESKey)
		case "max_age":
			var v string
			if err = oneArg(d, &v); err == nil {
				dur, perr := caddy.ParseDuration(v)
				if perr != nil {
					return d.Errf("max_age: %q is not a duration", v)
				}
				md := caddy.Duration(dur)
				p.MaxAge = &md
			}
		default:
			var handled bool
			if handled, err = p.DeliveryConfig.line(d, sub); !handled {
				return d.Errf("unknown subdirective %q", sub)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Push)(nil)
