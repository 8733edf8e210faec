package wechatauth

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// payBehindAuth returns a sentence for each wechat_pay of app's servers
// that a request may reach after a wechat_auth: a route in front of it,
// or before it in its route, holds one. Such a gateway answers the mini
// program's users, who choose what it signs as the merchant (the amount,
// the payer, a refund); it belongs on a site only the backend reaches.
// Members of one route group (a Caddyfile's handle blocks) exclude each
// other, so a wechat_auth in another handle block does not count.
func payBehindAuth(app *caddyhttp.App) []string {
	return walkServers(app, func(routes caddyhttp.RouteList, where string, out *[]string) {
		walkPay(routes, where, "", out)
	})
}

// walkPay checks routes, before which authed, when set, names a
// wechat_auth that may have run.
func walkPay(routes caddyhttp.RouteList, where, authed string, out *[]string) {
	type seen struct{ group, at string }
	var before []seen // the earlier routes holding a wechat_auth
	for i := range routes {
		r := &routes[i]
		at := fmt.Sprintf("%s, route %d", where, i)
		local := authed
		for _, s := range before {
			if local == "" && (s.group == "" || s.group != r.Group) {
				local = s.at
			}
		}
		held := ""
		for j, h := range routeHandlers(r) {
			hat := fmt.Sprintf("%s, handler %d", at, j)
			switch {
			case h.name == "wechat_auth":
				held = hat
			case h.name == "wechat_pay" && local != "":
				*out = append(*out, fmt.Sprintf("wechat_pay (%s) is reached after wechat_auth (%s): the mini program's users can call it with their token, and it signs what they send as the merchant (amount, payer, refunds); serve it on a site only your backend reaches", hat, local))
			case h.routes != nil:
				walkPay(h.routes, hat+" ("+h.name+")", local, out)
				if held == "" {
					held = firstAuth(h.routes, hat+" ("+h.name+")")
				}
			}
			if held != "" && local == "" {
				local = held
			}
		}
		if held != "" {
			before = append(before, seen{r.Group, held})
		}
	}
}

// firstAuth names the first wechat_auth anywhere in routes, or "".
func firstAuth(routes caddyhttp.RouteList, where string) string {
	for i := range routes {
		for j, h := range routeHandlers(&routes[i]) {
			hat := fmt.Sprintf("%s, route %d, handler %d", where, i, j)
			if h.name == "wechat_auth" {
				return hat
			}
			if h.routes != nil {
				if at := firstAuth(h.routes, hat+" ("+h.name+")"); at != "" {
					return at
				}
			}
		}
	}
	return ""
}
