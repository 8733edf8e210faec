package wechatauth

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/fileserver"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// A route list runs its routes in order; a route whose matchers match
// runs its handlers in order, each calling the next. A handler that
// answers without calling the next one ends the chain, so a wechat_auth
// placed after it, in the same route or in a later route of the same
// list, never sees a request when nothing makes the answering handler
// conditional. Such a config passes every request to the upstream
// unauthenticated, with whatever X-WX-OPENID the client sent.

// terminalHandlers are the standard handlers that never call the next
// one. Any other handler, a third party's included, is assumed to call it
// (a rate limiter before wechat_auth is a normal layout), so the check
// only ever names a certain mistake.
var terminalHandlers = map[string]bool{
	"static_response":   true, // respond, redir, abort
	"reverse_proxy":     true, // unless a handle_response may go on (forward_auth)
	"file_server":       true, // unless pass_thru
	"error":             true,
	"metrics":           true,
	"copy_response":     true,
	"wechat_api":        true,
	"wechat_pay":        true,
	"wechat_pay_notify": true, // on its matcher's paths
	"wechat_push":       true, // on its matcher's paths
}

// handlerInfo is what the check needs of one handler, provisioned or still
// raw JSON.
type handlerInfo struct {
	name     string
	terminal bool
	routes   caddyhttp.RouteList // a subroute's routes, or an invoked named route
	invoked  string              // the named route invoke runs
	auth     bool                // authenticates what goes past it (forward_auth)
}

// noPath marks the problem of a receiver without a path, whose fix is a
// path, not moving wechat_auth: walkRoutes writes it, joinProblems reads it.
const noPath = " has no path: "

// receiverPaths are the receivers that answer every request they get,
// with an example path: without one of their own they take all requests.
var receiverPaths = map[string]string{
	"wechat_push":       "/wechat/push",
	"wechat_pay_notify": "/pay/notify",
}

// unreachableAuth returns a sentence for each wechat_auth of app's servers
// that can never run, naming its place and what precedes it, and a
// warning for each that a reverse_proxy behind a matcher passes by.
func unreachableAuth(app *caddyhttp.App) (problems, warnings []string) {
	problems = walkServers(app, func(srv *caddyhttp.Server, where string, out *[]string) {
		w := routeWalk{named: srv.NamedRoutes}
		w.walkRoutes(srv.Routes, where, walkIn{})
		*out = append(*out, w.problems...)
		warnings = append(warnings, w.warnings...)
	})
	return problems, warnings
}

// walkServers runs walk on each of app's servers, in the order of their
// names, and returns the sentences it wrote.
func walkServers(app *caddyhttp.App, walk func(srv *caddyhttp.Server, where string, out *[]string)) []string {
	names := make([]string, 0, len(app.Servers))
	for name := range app.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		if srv := app.Servers[name]; srv != nil {
			walk(srv, fmt.Sprintf("server %s", name), &out)
		}
	}
	return out
}

// routeWalk walks one server's routes. The zero value knows no named
// routes: an invoke is then taken for a handler that calls the next one.
type routeWalk struct {
	named    map[string]*caddyhttp.Route // the server's, which invoke runs
	invoking map[string]bool             // named routes being walked, against a loop
	invokes  int                         // invokes followed, against an exponential walk
	problems []string                    // wechat_auths that can never run
	warnings []string                    // wechat_auths a matched reverse_proxy passes by
}

// maxInvokes bounds the named routes one walk follows: chains of routes
// that each invoke the next several times grow exponentially.
const maxInvokes = 10_000

// walkIn is what runs ahead of a route list.
type walkIn struct {
	dead         string // why nothing in the list can run: what answers every request first
	bypass       string // a reverse_proxy behind a matcher that takes some requests first
	authed       bool   // every request reaching the list went through an authentication
	underMatcher bool   // an enclosing route has a matcher
}

// walkOut is what a route list means for the handlers that follow it.
type walkOut struct {
	dead      string   // why nothing after it runs, when it answers every request
	deadProxy bool     // dead is a reverse_proxy's doing
	bypasses  []bypass // its reverse_proxies behind a matcher, unauthenticated
	authed    bool     // every request leaving it went through an authentication
}

// bypass is a reverse_proxy behind a matcher in a route of a list: it
// takes the requests it matches from the routes after it, except the
// other routes of its group (which never run with it) and those of
// another site (another host).
type bypass struct {
	why, group, hosts string
}

// authenticators are the handlers that authenticate every request that
// goes past them: a reverse_proxy after one does not pass requests on
// unauthenticated.
var authenticators = map[string]bool{
	"wechat_auth":    true,
	"authentication": true, // basic_auth
}

// walkRoutes checks routes, given what runs before them, and writes the
// wechat_auths that can never run to w.problems and those a matched
// reverse_proxy passes by to w.warnings.
//
// A reverse_proxy behind a matcher (`reverse_proxy /api/* …` or a `handle`
// before wechat_auth in a `route`, php_fastcgi's) sends the requests it
// matches to its upstream unauthenticated, with any X-WX-OPENID a client
// forged, though a wechat_auth follows: that is warned of, not refused,
// since some such layouts are meant.
func (w *routeWalk) walkRoutes(routes caddyhttp.RouteList, where string, in walkIn) walkOut {
	var out walkOut
	dead := in.dead
	groupTaken := map[string]string{}
	for i := range routes {
		r := &routes[i]
		at := fmt.Sprintf("%s, route %d", where, i)
		unconditional := matchesAll(r)
		// A site's host matcher makes its handlers no less the site's
		// own: a receiver there without a path still takes every request.
		underMatcher := in.underMatcher || !(unconditional || onlyHosts(r))
		hosts := hostsOf(r)
		shadow, shadowProxy := dead, false // what answers every request before the next handler
		skipped := false
		if shadow == "" && r.Group != "" {
			if why, ok := groupTaken[r.Group]; ok {
				shadow, skipped = why, true
			}
		}
		authed := in.authed || out.authed
		passed := in.bypass // a reverse_proxy the next handler may be passed by
		if passed == "" {
			for _, b := range out.bypasses {
				if (b.group == "" || b.group != r.Group) && (b.hosts == "" || b.hosts == hosts) {
					passed = b.why
					break
				}
			}
		}
		own := "" // a reverse_proxy behind a matcher within this route
		for j, h := range w.handlers(r) {
			hat := fmt.Sprintf("%s, handler %d", at, j)
			switch {
			case h.name == "wechat_auth" && shadow != "":
				w.problems = append(w.problems, fmt.Sprintf("wechat_auth (%s) can never run: %s precedes it and answers every request, so requests reach what follows unauthenticated", hat, shadow))
			case h.name == "wechat_auth" && passed != "" && !authed:
				w.warnings = append(w.warnings, fmt.Sprintf("wechat_auth (%s) does not see the requests %s takes before it: those reach that proxy's upstream unauthenticated, with any X-WX-OPENID a client sends. Put wechat_auth first, and name paths that need no token in its `public` list", hat, passed))
			case h.routes != nil:
				if h.invoked != "" && shadow != "" {
					// A named route runs where it is invoked and
					// reached; this invoke is not, so it adds nothing.
					continue
				}
				var sub walkOut
				w.descend(h, hat, func(where string) {
					sub = w.walkRoutes(h.routes, where, walkIn{dead: shadow, bypass: passed, authed: authed, underMatcher: underMatcher})
				})
				if shadow == "" && sub.dead != "" {
					shadow, shadowProxy = sub.dead, sub.deadProxy && !authed
				}
				if len(sub.bypasses) > 0 && !authed {
					if passed == "" {
						passed = sub.bypasses[0].why
					}
					if own == "" {
						own = sub.bypasses[0].why
					}
				}
				authed = authed || sub.authed
			case h.terminal && shadow == "":
				shadow, shadowProxy = fmt.Sprintf("%s (%s)", h.name, hat), h.name == "reverse_proxy" && !authed
				if receiverPaths[h.name] != "" && !underMatcher {
					shadow += fmt.Sprintf("%sgive it the one WeChat posts to (`%s %s { … }`); it", noPath, h.name, receiverPaths[h.name])
				}
			}
			if (authenticators[h.name] || h.auth) && shadow == "" {
				authed = true
			}
		}
		if dead != "" || skipped {
			continue
		}
		// A route behind a matcher that ends in an unauthenticated
		// reverse_proxy takes the requests it matches from the routes
		// after it.
		if own == "" && !unconditional && shadowProxy {
			own = shadow
		}
		if own != "" {
			out.bypasses = append(out.bypasses, bypass{why: own, group: r.Group, hosts: hosts})
		}
		if !unconditional {
			continue
		}
		if authed && shadow == "" {
			out.authed = true
		}
		switch {
		case shadow != "":
			dead, out.deadProxy = shadow, shadowProxy
		case r.Terminal:
			dead = fmt.Sprintf("a terminal route matching every request (%s)", at)
		case r.Group != "":
			if _, ok := groupTaken[r.Group]; !ok {
				groupTaken[r.Group] = fmt.Sprintf("a route of group %q matching every request (%s; only the first matching route of a group runs)", r.Group, at)
			}
		}
	}
	out.dead = dead
	return out
}

// matchesAll reports whether r matches every request: it has no matcher,
// or only a path matcher with "*" or "/*", which match every path.
func matchesAll(r *caddyhttp.Route) bool {
	switch {
	case len(r.MatcherSetsRaw) == 0 && len(r.MatcherSets) == 0:
		return true
	case len(r.MatcherSetsRaw) == 1 && len(r.MatcherSetsRaw[0]) == 1:
		var paths []string
		return json.Unmarshal(r.MatcherSetsRaw[0]["path"], &paths) == nil && allPaths(paths)
	case len(r.MatcherSetsRaw) == 0 && len(r.MatcherSets) == 1 && len(r.MatcherSets[0]) == 1:
		m, ok := r.MatcherSets[0][0].(*caddyhttp.MatchPath)
		return ok && allPaths(*m)
	}
	return false
}

// onlyHosts reports whether r's matchers name hosts and nothing else: a
// Caddyfile site block's route.
func onlyHosts(r *caddyhttp.Route) bool {
	if len(r.MatcherSetsRaw)+len(r.MatcherSets) == 0 {
		return false
	}
	for _, set := range r.MatcherSetsRaw {
		if _, ok := set["host"]; !ok || len(set) != 1 {
			return false
		}
	}
	for _, set := range r.MatcherSets {
		for _, m := range set {
			if _, ok := m.(*caddyhttp.MatchHost); !ok {
				return false
			}
		}
	}
	return true
}

// allPaths reports whether a path matcher's list matches every path.
func allPaths(paths []string) bool {
	return slices.Contains(paths, "*") || slices.Contains(paths, "/*")
}

// answers reports whether routes answer every request that reaches them.
func (w *routeWalk) answers(routes caddyhttp.RouteList) bool {
	scratch := routeWalk{named: w.named, invoking: w.invoking, invokes: w.invokes}
	dead := scratch.walkRoutes(routes, "", walkIn{}).dead
	w.invokes = scratch.invokes // one bound for the whole walk
	return dead != ""
}

// proxyAnswers reports whether a reverse_proxy with these handle_response
// blocks answers every request. A block that only sets status_code, or
// whose routes always answer, ends the chain; one whose routes may not
// (forward_auth's, which copies headers) goes on to the next handler, for
// the responses it matches; responses no block matches are answered.
func (w *routeWalk) proxyAnswers(blocks []caddyhttp.ResponseHandler) bool {
	for _, b := range blocks {
		if b.StatusCode.String() == "" && !w.answers(b.Routes) {
			return false
		}
	}
	return true
}

// handlers returns what the check needs of r's handlers: from the raw
// JSON while the route is not provisioned yet, else from the handlers.
func (w *routeWalk) handlers(r *caddyhttp.Route) []handlerInfo {
	if len(r.HandlersRaw) > 0 {
		hs := make([]handlerInfo, 0, len(r.HandlersRaw))
		for _, raw := range r.HandlersRaw {
			hs = append(hs, w.rawHandlerInfo(raw))
		}
		return hs
	}
	hs := make([]handlerInfo, 0, len(r.Handlers))
	for _, h := range r.Handlers {
		hs = append(hs, w.provisionedHandlerInfo(h))
	}
	return hs
}

// handlerFields are what the check reads of a handler, from its JSON or
// from the provisioned handler.
type handlerFields struct {
	Handler        string                      `json:"handler"`
	Routes         caddyhttp.RouteList         `json:"routes"`
	HandleResponse []caddyhttp.ResponseHandler `json:"handle_response"`
	PassThru       bool                        `json:"pass_thru"`
	Name           string                      `json:"name"`
}

func (w *routeWalk) rawHandlerInfo(raw json.RawMessage) handlerInfo {
	var h handlerFields
	if err := json.Unmarshal(raw, &h); err != nil {
		return handlerInfo{} // Caddy refuses it when it gets there
	}
	return w.info(h)
}

func (w *routeWalk) provisionedHandlerInfo(h caddyhttp.MiddlewareHandler) handlerInfo {
	var f handlerFields
	if m, ok := h.(caddy.Module); ok {
		f.Handler = strings.TrimPrefix(string(m.CaddyModule().ID), "http.handlers.")
	}
	switch h := h.(type) {
	case *caddyhttp.Subroute:
		f.Routes = h.Routes
	case *caddyhttp.Invoke:
		f.Name = h.Name
	case *reverseproxy.Handler:
		f.HandleResponse = h.HandleResponse
	case *fileserver.FileServer:
		f.PassThru = h.PassThru
	}
	return w.info(f)
}

// info is what the check needs of the handler h describes.
func (w *routeWalk) info(h handlerFields) handlerInfo {
	info := handlerInfo{name: h.Handler, terminal: terminalHandlers[h.Handler]}
	switch h.Handler {
	case "subroute":
		info.routes = h.Routes
		if info.routes == nil {
			info.routes = caddyhttp.RouteList{}
		}
	case "invoke":
		w.invoke(&info, h.Name)
	case "reverse_proxy":
		info.terminal = w.proxyAnswers(h.HandleResponse)
		info.auth = !info.terminal // forward_auth: on to the next handler once the service agrees
	case "file_server":
		info.terminal = !h.PassThru
	}
	return info
}

// descend runs walk on the routes of h (a subroute, or the named route an
// invoke runs), at hat, naming the place they are walked from. A named
// route is marked as being walked meanwhile: an invoke of it then is a
// loop.
func (w *routeWalk) descend(h handlerInfo, hat string, walk func(where string)) {
	label := h.name
	if h.invoked != "" {
		label += " " + h.invoked
		if w.invoking == nil {
			w.invoking = map[string]bool{}
		}
		w.invoking[h.invoked] = true
		defer delete(w.invoking, h.invoked)
	}
	walk(hat + " (" + label + ")")
}

// invoke makes info the named route it runs, which, like a subroute's,
// calls the next handler when it does not answer. A name the server does
// not have, or one already being walked (a loop), is left as a handler
// that calls the next one.
func (w *routeWalk) invoke(info *handlerInfo, name string) {
	if r, ok := w.named[name]; ok && r != nil && !w.invoking[name] && w.invokes < maxInvokes {
		w.invokes++
		info.routes, info.invoked = caddyhttp.RouteList{*r}, name
	}
}

// joinProblems makes one error text of the check's sentences, with the
// fix.
func joinProblems(problems []string) string {
	msg := strings.Join(problems, "; ")
	for _, p := range problems {
		if !strings.Contains(p, noPath) {
			return msg + ". Put wechat_auth before the handler that answers: in a Caddyfile, keep the directive's default order (remove `order wechat_auth after …`) or move it up inside `route { … }`"
		}
	}
	return msg
}
