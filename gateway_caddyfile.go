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

// gatewaySharedLines are the subdirectives the gateway shares with
// wechat_auth; wechat_auth's parser reads them, so both read them alike.
var gatewaySharedLines = map[string]bool{
	"app_id": true, "app_secret": true, "app": true, "api_base": true,
	"sandbox": true, "timeout": true, "store": true, "signing_key": true,
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
	dir := d.Token()
	if d.NextArg() {
		return d.ArgErr()
	}
	shared := []caddyfile.Token{
		{File: dir.File, Line: dir.Line, Text: "wechat_auth"},
		{File: dir.File, Line: dir.Line, Text: "{"},
	}
	last := dir.Line
	for d.NextBlock(0) {
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
		case gatewaySharedLines[sub]:
			seg := d.NextSegment()
			shared = append(shared, seg...)
			last = seg[len(seg)-1].Line
		default:
			return d.Errf("unknown subdirective %q", sub)
		}
	}
	shared = append(shared, caddyfile.Token{File: dir.File, Line: last + 1, Text: "}"})
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(shared)); err != nil {
		return err
	}
	g.Apps, g.APIBase, g.Sandbox, g.Timeout = h.Apps, h.APIBase, h.Sandbox, h.Timeout
	g.Store, g.Redis, g.SigningKey, g.PreviousSigningKeys = h.Store, h.Redis, h.SigningKey, h.PreviousSigningKeys
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*APIGateway)(nil)
