package wechatauth

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// DeliveryConfig is what every receiver of WeChat's events (wechat_push,
// wechat_pay_notify) delivers with: the upstream, the timings, the
// outbox's store and the assertion on each delivery.
type DeliveryConfig struct {
	// The upstream URL (http:// or https://) each event is POSTed to. The
	// upstream should accept only Caddy's requests: a private listener,
	// or assertion. Required.
	To string `json:"to,omitempty"`

	// How long one delivery attempt may take; an upstream answering 2xx
	// within it has the event, and a slower one gets it again from the
	// outbox. A push's passive reply must come within it: keep it under
	// WeChat's 5 s. Default: 4s
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// How long an undelivered event is retried (after 5 s, 10 s, then
	// every 20 s for its first 10 minutes, then backing off to every 10
	// minutes) before it is dropped with an ERROR log. Default: 24h
	RetryFor caddy.Duration `json:"retry_for,omitempty"`

	// Where the outbox and the deduplication records live: "memory" for
	// Caddy's storage (survives a restart of one instance), or a
	// redis:// URL shared by every instance, as in wechat_auth.
	// Default: the wechat app's store.
	Store string `json:"store,omitempty"`

	// The Redis of the store given by its parts, as in wechat_auth's
	// store redis { … }.
	Redis *RedisConfig `json:"redis,omitempty"`

	// Sign every delivery with an identity assertion (an ES256 JWT: sub
	// the user's openid and aud the appid when the event names them, a
	// 60 s lifetime), so the upstream can accept events only from Caddy.
	// The key is wechat_auth's (generated once in Caddy's storage,
	// published at its jwks.json) unless assertion_key gives one.
	Assertion bool `json:"assertion,omitempty"`

	// The header that carries the assertion. Default: X-WX-ASSERTION
	AssertionHeader string `json:"assertion_header,omitempty"`

	// The assertion's private key, a PEM ECDSA P-256 key; use
	// {file./path/key.pem}. Give wechat_auth's, when it has one.
	AssertionKey string `json:"assertion_key,omitempty"`

	delivery *delivery
}

// line reads the Caddyfile line sub when it is one of the delivery
// settings; handled is false when it is not.
func (c *DeliveryConfig) line(d *caddyfile.Dispenser, sub string) (handled bool, err error) {
	switch sub {
	case "to":
		err = oneArg(d, &c.To)
	case "timeout":
		c.Timeout, err = durationLine(d)
	case "retry_for":
		c.RetryFor, err = durationLine(d)
	case "store":
		var sc sharedConfig
		if _, err = sc.line(d); err == nil {
			c.Store, c.Redis = sc.Store, sc.Redis
			if c.Store == "" && c.Redis == nil {
				c.Store = "memory" // said outright: not the wechat app's
			}
		}
	case "assertion":
		args := d.RemainingArgs()
		if len(args) > 1 {
			return true, d.Errf("assertion takes at most a header name: assertion [<header>]")
		}
		c.Assertion = true
		if len(args) == 1 {
			c.AssertionHeader = args[0]
		}
	case "assertion_key":
		err = oneArg(d, &c.AssertionKey)
	default:
		return false, nil
	}
	return true, err
}

// open judges the settings, naming module in its errors, and registers
// the outbox of kind, which opens when the wechat app starts. taken are
// the receiver's own headers, which the assertion may not use.
func (c *DeliveryConfig) open(ctx caddy.Context, app *WeChatApp, module, kind string, taken ...string) error {
	to := strings.TrimSpace(caddy.NewReplacer().ReplaceKnown(c.To, ""))
	if !isHTTPURL(to) {
		return fmt.Errorf("%s: to must be an http:// or https:// URL of the upstream, such as http://127.0.0.1:3000/wechat/%s", module, kind)
	}
	c.To = to
	if c.Timeout < 0 || c.RetryFor < 0 {
		return fmt.Errorf("%s: timeout and retry_for must not be negative", module)
	}
	store, redis := c.Store, c.Redis
	if store == "" && redis == nil {
		store, redis = app.Store, app.Redis
	}
	signer, err := deliverySigner(ctx, module, app.Sandbox, c.Assertion, c.AssertionHeader, c.AssertionKey, taken...)
	if err != nil {
		return err
	}
	c.delivery, err = openDelivery(ctx, deliverySettings{
		Module: module, Kind: kind, Store: store, Redis: redis,
		Timeout: time.Duration(c.Timeout), RetryFor: time.Duration(c.RetryFor),
		Assertion: signer,
	})
	return err
}

// Cleanup gives back this config's hold on the outbox.
func (c *DeliveryConfig) Cleanup() error {
	if c.delivery == nil {
		return nil
	}
	return c.delivery.close()
}

// isHTTPURL reports whether s is an absolute http:// or https:// URL.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
