package wechatauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// payBehindAuth returns a sentence for each wechat_pay on a site that also
// has a wechat_auth: a site the mini program's users reach. Such a
// gateway answers them (or anyone, on a path wechat_auth does not cover),
// and they choose what it signs as the merchant (the amount, the payer, a
// refund); it belongs on a site only the backend reaches. A site is the
// routes of a server that match one set of hosts (a Caddyfile site block
// is a route matching its hosts; blocks for one host with different paths
// are one site), those matching no host together.
func payBehindAuth(app *caddyhttp.App) []string {
	return walkServers(app, func(srv *caddyhttp.Server, where string, out *[]string) {
		routes := srv.Routes
		w := &routeWalk{named: srv.NamedRoutes}
		var keys []string
		sites := map[string][]int{}
		for i := range routes {
			k := hostsOf(&routes[i])
			if _, ok := sites[k]; !ok {
				keys = append(keys, k)
			}
			sites[k] = append(sites[k], i)
		}
		for _, k := range keys {
			w.payOnSite(routes, sites[k], where, out)
		}
	})
}

// hostsOf is the hosts r's matchers name, sorted and joined, or "" when
// they name none.
func hostsOf(r *caddyhttp.Route) string {
	var hosts []string
	for _, set := range r.MatcherSetsRaw {
		if raw, ok := set["host"]; ok {
			var hs []string
			if json.Unmarshal(raw, &hs) == nil {
				hosts = append(hosts, hs...)
			}
		}
	}
	for _, set := range r.MatcherSets {
		for _, m := range set {
			if hm, ok := m.(*caddyhttp.MatchHost); ok {
				hosts = append(hosts, *hm...)
			}
		}
	}
	sort.Strings(hosts)
	return strings.Join(slices.Compact(hosts), " ")
}

// payOnSite writes the sentence for the site made of routes[i] for i in
// site, when it holds both a wechat_auth and a wechat_pay.
func (w *routeWalk) payOnSite(routes caddyhttp.RouteList, site []int, where string, out *[]string) {
	auth, pay := "", ""
	for _, i := range site {
		at := fmt.Sprintf("%s, route %d", where, i)
		if auth == "" {
			auth = w.findHandler(routes[i:i+1], "wechat_auth", at, false)
		}
		if pay == "" {
			pay = w.findHandler(routes[i:i+1], "wechat_pay", at, false)
		}
	}
	if auth != "" && pay != "" {
		*out = append(*out, fmt.Sprintf("wechat_pay (%s) is on a site with wechat_auth (%s): the mini program's users reach it, and it signs what they send as the merchant (amount, payer, refunds); serve it on a site only your backend reaches", pay, auth))
	}
}

// findHandler names the first handler called name anywhere in routes, the
// named routes they invoke included, or "". numbered says whether where
// still needs the route's number.
func (w *routeWalk) findHandler(routes caddyhttp.RouteList, name, where string, numbered bool) string {
	for i := range routes {
		at := where
		if numbered {
			at = fmt.Sprintf("%s, route %d", where, i)
		}
		for j, h := range w.handlers(&routes[i]) {
			hat := fmt.Sprintf("%s, handler %d", at, j)
			if h.name == name {
				return hat
			}
			if h.routes == nil {
				continue
			}
			found := ""
			w.descend(h, hat, func(where string) {
				found = w.findHandler(h.routes, name, where, true)
			})
			if found != "" {
				return found
			}
		}
	}
	return ""
}
