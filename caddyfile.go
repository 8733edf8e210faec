package wechatauth

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var w Handler
	err := w.UnmarshalCaddyfile(h.Dispenser)
	return &w, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	wechat_auth [<matcher>] {
//	    app_id          <appid>
//	    app_secret      <secret>
//	    app             <appid> [<secret>]    # repeatable: several mini programs
//	    api_base        <url>
//	    sandbox
//	    route_prefix    <path>
//	    signing_key     <secret>
//	    token_ttl       <duration>
//	    session_ttl     <duration>
//	    optional
//	    forward_profile
//	    header_openid   <name>
//	    header_unionid  <name>
//	    header_appid    <name>
//	    max_sessions    <n>
//	    store           memory | redis <url>
//	    timeout         <duration>
//	    assertion       [<header>]
//	    assertion_key   <pem>                 # {file./path/key.pem}
//	}
func (w *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	var single App
	var apps []App
	for d.NextBlock(0) {
		sub := d.Val()
		switch sub {
		case "app_id":
			if err := oneArg(d, &single.AppID); err != nil {
				return err
			}
		case "app_secret":
			if err := oneArg(d, &single.AppSecret); err != nil {
				return err
			}
		case "app":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("app takes an appid and its secret: app <appid> <secret>")
			}
			a := App{AppID: args[0]}
			if len(args) == 2 {
				a.AppSecret = args[1]
			}
			apps = append(apps, a)
		case "api_base":
			if err := oneArg(d, &w.APIBase); err != nil {
				return err
			}
		case "sandbox":
			if d.NextArg() {
				return d.Errf("sandbox takes no argument")
			}
			w.Sandbox = true
		case "route_prefix":
			if err := oneArg(d, &w.RoutePrefix); err != nil {
				return err
			}
			if !strings.HasPrefix(w.RoutePrefix, "/") {
				return d.Errf("route_prefix must start with '/': %q", w.RoutePrefix)
			}
		case "signing_key":
			if err := oneArg(d, &w.SigningKey); err != nil {
				return err
			}
			if !strings.Contains(w.SigningKey, "{") && len(w.SigningKey) < minSigningKey {
				return d.Errf("signing_key is %d bytes; it must be at least %d", len(w.SigningKey), minSigningKey)
			}
		case "token_ttl", "session_ttl", "timeout":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s: %q is not a positive duration", sub, v)
			}
			switch sub {
			case "token_ttl":
				w.TokenTTL = caddy.Duration(dur)
			case "session_ttl":
				w.SessionTTL = caddy.Duration(dur)
			default:
				w.Timeout = caddy.Duration(dur)
			}
		case "optional":
			if d.NextArg() {
				return d.Errf("optional takes no argument")
			}
			w.Optional = true
		case "forward_profile":
			if d.NextArg() {
				return d.Errf("forward_profile takes no argument")
			}
			w.ForwardProfile = true
		case "header_openid":
			if err := oneArg(d, &w.HeaderOpenID); err != nil {
				return err
			}
		case "header_unionid":
			if err := oneArg(d, &w.HeaderUnionID); err != nil {
				return err
			}
		case "header_appid":
			if err := oneArg(d, &w.HeaderAppID); err != nil {
				return err
			}
		case "max_sessions":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return d.Errf("max_sessions: %q is not a positive number", v)
			}
			w.MaxSessions = n
		case "store":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && args[0] == "memory":
				w.Store = ""
			case len(args) == 2 && args[0] == "redis":
				if !strings.HasPrefix(args[1], "redis://") && !strings.HasPrefix(args[1], "rediss://") && !strings.HasPrefix(args[1], "{") {
					return d.Errf("store redis: %q is not a redis:// or rediss:// URL", args[1])
				}
				w.Store = args[1]
			default:
				return d.Errf("store takes 'memory' or 'redis <url>'")
			}
		case "assertion":
			args := d.RemainingArgs()
			if len(args) > 1 {
				return d.Errf("assertion takes at most a header name: assertion [<header>]")
			}
			w.Assertion = true
			if len(args) == 1 {
				w.AssertionHeader = args[0]
			}
		case "assertion_key":
			if err := oneArg(d, &w.AssertionKey); err != nil {
				return err
			}
		default:
			return d.Errf("unknown subdirective %q", sub)
		}
	}
	if single.AppSecret != "" && single.AppID == "" {
		return d.Errf("app_secret is set but app_id is not")
	}
	if single.AppID != "" {
		apps = append([]App{single}, apps...)
	}
	w.Apps = apps
	return nil
}

// oneArg reads exactly one argument of the current subdirective.
func oneArg(d *caddyfile.Dispenser, into *string) error {
	sub := d.Val()
	if !d.NextArg() {
		return d.Errf("%s needs a value", sub)
	}
	*into = d.Val()
	if d.NextArg() {
		return d.Errf("%s takes one value", sub)
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
