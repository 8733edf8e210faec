package wechatauth

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-wechat/wechatauth/internal/session"
)

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var w Handler
	err := w.UnmarshalCaddyfile(h.Dispenser)
	return &w, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. It only
// reads the syntax; Provision judges the values, so a JSON config gets the
// same checks. Syntax:
//
//	wechat_auth [<matcher>] {
//	    app_id          <appid>
//	    app_secret      <secret>
//	    app             <appid> [<secret>]    # repeatable: several mini programs
//	    api_base        <url>
//	    sandbox
//	    route_prefix    <path>
//	    signing_key     <secret> [<previous>...]
//	    key_rotation    <duration>
//	    token_ttl       <duration>
//	    session_ttl     <duration>
//	    optional
//	    public          <path>...             # repeatable
//	    forward_profile
//	    header_openid   <name>
//	    header_unionid  <name>
//	    header_appid    <name>
//	    max_sessions    <n>
//	    store           memory | redis <url> | redis {   # redis:// rediss:// unix://
//	        addrs             <host:port>...
//	        master_name       <name>
//	        cluster
//	        username          <user>
//	        password          <password>
//	        sentinel_username <user>
//	        sentinel_password <password>
//	        db                <n>
//	        tls
//	    }
//	    timeout         <duration>
//	    assertion       [<header>]
//	    assertion_key   <pem>                 # {file./path/key.pem}
//	    web {                                 # WeChat login for web pages, cookie sessions
//	        oa_app    <appid>                 # Official Account: pages inside WeChat
//	        qr_app    <appid>                 # website app: QR login outside WeChat
//	        scope     snsapi_base | snsapi_userinfo
//	        return_to <url-prefix>...         # repeatable
//	        cookie    <name>
//	        open_base <url>
//	    }
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	sc := sharedConfig{APIBase: h.APIBase, Sandbox: h.Sandbox, Timeout: h.Timeout, Store: h.Store, Redis: h.Redis,
		SigningKey: h.SigningKey, PreviousSigningKeys: h.PreviousSigningKeys}
	for d.NextBlock(0) {
		sub := d.Val()
		if shared, err := sc.line(d); shared || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		switch sub {

		case "route_prefix":
			if err := oneArg(d, &h.RoutePrefix); err != nil {
				return err
			}

		case "key_rotation":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			dur, err := parseDuration(d, "key_rotation", v)
			if err != nil {
				return err
			}
			h.KeyRotation = caddy.Duration(dur)
		case "token_ttl", "session_ttl":
			dur, err := durationLine(d)
			if err != nil {
				return err
			}
			if sub == "token_ttl" {
				h.TokenTTL = dur
			} else {
				h.SessionTTL = dur
			}

		case "optional":
			if d.NextArg() {
				return d.Errf("optional takes no argument")
			}
			h.Optional = true
		case "public":
			paths := d.RemainingArgs()
			if len(paths) == 0 {
				return d.Errf("public needs at least one path: public /path /prefix/* *suffix")
			}
			h.PublicPaths = append(h.PublicPaths, paths...)
		case "forward_profile":
			if d.NextArg() {
				return d.Errf("forward_profile takes no argument")
			}
			h.ForwardProfile = true
		case "header_openid":
			if err := oneArg(d, &h.HeaderOpenID); err != nil {
				return err
			}
		case "header_unionid":
			if err := oneArg(d, &h.HeaderUnionID); err != nil {
				return err
			}
		case "header_appid":
			if err := oneArg(d, &h.HeaderAppID); err != nil {
				return err
			}
		case "max_sessions":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return d.Errf("max_sessions: %q is not a number", v)
			}
			if n == 0 {
				// In JSON zero means "unset"; written out it would
				// quietly become the default.
				return d.Errf("max_sessions: 0 sessions cannot work; leave the line out for the default")
			}
			if n > session.MaxSessionsLimit {
				// Judged here too: a number past 2^53 does not survive
				// Caddy's JSON round trip, whose error would name no line.
				return d.Errf("max_sessions: at most %d; with more users, use store redis", session.MaxSessionsLimit)
			}
			h.MaxSessions = n

		case "assertion":
			args := d.RemainingArgs()
			if len(args) > 1 {
				return d.Errf("assertion takes at most a header name: assertion [<header>]")
			}
			h.Assertion = true
			if len(args) == 1 {
				h.AssertionHeader = args[0]
			}
		case "assertion_key":
			if err := oneArg(d, &h.AssertionKey); err != nil {
				return err
			}
		case "web":
			if h.Web != nil {
				return d.Errf("web is given twice")
			}
			web, err := parseWeb(d)
			if err != nil {
				return err
			}
			h.Web = web
		default:
			return d.Errf("unknown subdirective %q", sub)
		}
	}
	apps, err := sc.finish(d)
	if err != nil {
		return err
	}
	h.Apps, h.APIBase, h.Sandbox, h.Timeout = apps, sc.APIBase, sc.Sandbox, sc.Timeout
	h.Store, h.Redis, h.SigningKey, h.PreviousSigningKeys = sc.Store, sc.Redis, sc.SigningKey, sc.PreviousSigningKeys
	return nil
}

// sharedConfig holds the subdirectives wechat_auth and wechat_api share
// (app_id, app_secret, app, api_base, sandbox, timeout, store,
// signing_key), read by one parser so both directives read them alike.
type sharedConfig struct {
	single App   // app_id and app_secret
	apps   []App // app lines

	APIBase             string
	Sandbox             bool
	Timeout             caddy.Duration
	Store               string
	Redis               *RedisConfig
	SigningKey          string
	PreviousSigningKeys []string
}

// hasLines reports whether c names any shared setting.
func (c *sharedConfig) hasLines() bool {
	return len(c.apps) > 0 || c.APIBase != "" || c.Sandbox || c.Timeout != 0 || c.Store != "" ||
		c.Redis != nil || c.SigningKey != "" || len(c.PreviousSigningKeys) > 0
}

// line reads the current subdirective when it is a shared one, and
// reports whether it was.
func (c *sharedConfig) line(d *caddyfile.Dispenser) (bool, error) {
	switch sub := d.Val(); sub {
	case "app_id":
		if err := oneArg(d, &c.single.AppID); err != nil {
			return true, err
		}
	case "app_secret":
		if err := oneArg(d, &c.single.AppSecret); err != nil {
			return true, err
		}
	case "app":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return true, d.Errf("app takes an appid and its secret: app <appid> <secret>")
		}
		a := App{AppID: args[0]}
		if len(args) == 2 {
			a.AppSecret = args[1]
		}
		c.apps = append(c.apps, a)
	case "api_base":
		if err := oneArg(d, &c.APIBase); err != nil {
			return true, err
		}
	case "sandbox":
		if d.NextArg() {
			return true, d.Errf("sandbox takes no argument")
		}
		c.Sandbox = true
	case "signing_key":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.Errf("signing_key needs a value: signing_key <current> [<previous>...]")
		}
		c.SigningKey, c.PreviousSigningKeys = args[0], args[1:]
	case "store":
		args := d.RemainingArgs()
		switch {
		case len(args) == 1 && args[0] == "memory":
			c.Store, c.Redis = "", nil
		case len(args) == 2 && args[0] == "redis":
			c.Store = args[1]
			// A block as well is refused at provision.
			if err := unmarshalRedisBlock(d, &c.Redis); err != nil {
				return true, err
			}
		case len(args) == 1 && args[0] == "redis":
			if err := unmarshalRedisBlock(d, &c.Redis); err != nil {
				return true, err
			}
			if c.Redis == nil {
				return true, d.Errf("store redis takes a URL or a block: store redis { addrs … }")
			}
		default:
			return true, d.Errf("store takes 'memory', 'redis <url>' or 'redis { … }'")
		}
	case "timeout":
		dur, err := durationLine(d)
		if err != nil {
			return true, err
		}
		c.Timeout = dur
	default:
		return false, nil
	}
	return true, nil
}

// finish checks the app lines once the block is read and returns the apps:
// the one of app_id and app_secret first, then the app lines.
func (c *sharedConfig) finish(d *caddyfile.Dispenser) ([]App, error) {
	if c.single.AppSecret != "" && c.single.AppID == "" {
		return nil, d.Errf("app_secret is set but app_id is not")
	}
	if c.single.AppID != "" {
		return append([]App{c.single}, c.apps...), nil
	}
	return c.apps, nil
}

// parseDuration reads v, the value of sub, as a Caddy duration; its error
// says what one looks like and names the line.
func parseDuration(d *caddyfile.Dispenser, sub, v string) (time.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s: %q is not a duration such as 90s, 2h or 3d (or is longer than 290 years)", sub, v)
	}
	return dur, nil
}

// durationLine reads the one duration of a token_ttl, session_ttl or
// timeout line.
func durationLine(d *caddyfile.Dispenser) (caddy.Duration, error) {
	sub := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return 0, err
	}
	dur, err := parseDuration(d, sub, v)
	if err != nil {
		return 0, err
	}
	if dur == 0 {
		// In JSON zero means "unset"; written out it would
		// quietly become the default.
		return 0, d.Errf("%s: 0 is not a usable duration; leave the line out for the default", sub)
	}
	return caddy.Duration(dur), nil
}

// unmarshalRedisBlock reads the block of `store redis { … }`, if one
// follows, into *redis. Values are judged at provision.
func unmarshalRedisBlock(d *caddyfile.Dispenser, redis **RedisConfig) error {
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if *redis == nil {
			*redis = new(RedisConfig)
		}
		c, sub := *redis, d.Val()
		if seen[sub] {
			return d.Errf("store redis: %s is given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "addrs":
			c.Addrs = d.RemainingArgs()
			if len(c.Addrs) == 0 {
				err = d.Errf("store redis: addrs needs one or more host:port")
			}
		case "master_name":
			err = oneArg(d, &c.MasterName)
		case "username":
			err = oneArg(d, &c.Username)
		case "password":
			err = oneArg(d, &c.Password)
		case "sentinel_username":
			err = oneArg(d, &c.SentinelUsername)
		case "sentinel_password":
			err = oneArg(d, &c.SentinelPassword)
		case "db":
			var v string
			if err = oneArg(d, &v); err == nil {
				if c.DB, err = strconv.Atoi(v); err != nil {
					err = d.Errf("store redis: db %q is not a number", v)
				}
			}
		case "tls", "cluster":
			if d.NextArg() {
				return d.Errf("store redis: %s takes no argument", sub)
			}
			c.TLS = c.TLS || sub == "tls"
			c.Cluster = c.Cluster || sub == "cluster"
		default:
			err = d.Errf("store redis: unknown subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
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

// parseWeb reads a web block.
func parseWeb(d *caddyfile.Dispenser) (*WebConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("web takes a block, no argument")
	}
	w := new(WebConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch sub := d.Val(); sub {
		case "oa_app":
			if err := oneArg(d, &w.OAApp); err != nil {
				return nil, err
			}
		case "qr_app":
			if err := oneArg(d, &w.QRApp); err != nil {
				return nil, err
			}
		case "scope":
			if err := oneArg(d, &w.Scope); err != nil {
				return nil, err
			}
		case "return_to":
			urls := d.RemainingArgs()
			if len(urls) == 0 {
				return nil, d.Errf("return_to needs at least one URL prefix, such as https://www.example.com/")
			}
			w.ReturnTo = append(w.ReturnTo, urls...)
		case "cookie":
			if err := oneArg(d, &w.Cookie); err != nil {
				return nil, err
			}
		case "open_base":
			if err := oneArg(d, &w.OpenBase); err != nil {
				return nil, err
			}
		default:
			return nil, d.Errf("web: unknown subdirective %q", sub)
		}
	}
	return w, nil
}

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
				dur, perr := parseDuration(d, "max_age", v)
				if perr != nil {
					return perr
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
