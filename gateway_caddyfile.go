package wechatauth

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func parseGatewayCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var g APIGateway
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return &g, err
}

// UnmarshalCaddyfile sets up the gateway from Caddyfile tokens. Syntax:
//
//	wechat_api [<matcher>] {
//	    app_id      <appid>
//	    app_secret  <secret>
//	    app         <appid> <secret>     # repeatable: several mini programs
//	    api_base    <url>
//	    sandbox
//	    timeout     <duration>
//	    store       memory | redis <url> | redis { … }
//	    signing_key <current> [<previous>...]
//	    allow       <path>... | *        # repeatable
//	    max_body    <size>               # such as 10MiB
//	}
func (g *APIGateway) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	// The lines shared with wechat_auth are read by its parser of them.
	sc := sharedConfig{APIBase: g.APIBase, Sandbox: g.Sandbox, Timeout: g.Timeout, Store: g.Store, Redis: g.Redis,
		SigningKey: g.SigningKey, PreviousSigningKeys: g.PreviousSigningKeys}
	for d.NextBlock(0) {
		if shared, err := sc.line(d); shared || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch sub := d.Val(); {
		case sub == "allow":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("allow needs at least one path (or *)")
			}
			g.Allow = append(g.Allow, args...)
		case sub == "max_body":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<40 {
				return d.Errf("max_body: %q is not a size such as 10MiB", v)
			}
			g.MaxBody = int64(n)
		default:
			return d.Errf("unknown subdirective %q", sub)
		}
	}
	apps, err := sc.finish(d)
	if err != nil {
		return err
	}
	g.Apps, g.APIBase, g.Sandbox, g.Timeout = apps, sc.APIBase, sc.Sandbox, sc.Timeout
	g.Store, g.Redis, g.SigningKey, g.PreviousSigningKeys = sc.Store, sc.Redis, sc.SigningKey, sc.PreviousSigningKeys
	return nil
}
