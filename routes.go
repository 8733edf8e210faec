package wechatauth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/audit"
	"github.com/caddy-wechat/wechatauth/internal/credential"
)

// routeFunc serves one route. An *apierr.Error it returns is written as the
// JSON answer; any other error goes to Caddy.
type routeFunc func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error

// route is one entry of the route table: the methods it answers, whether
// it takes a body, and what serves it.
type route struct {
	// methods answered; any other gets 405 naming them in Allow. Empty:
	// every method.
	methods []string
	// noBody: the route never reads the body, so neither limits nor
	// drains it (see verify).
	noBody bool
	// page: a browser opens it, so an error answering a browser's GET
	// (apierr.WantsPage) is a page, the JSON answer shown in it.
	page  bool
	serve routeFunc
	// counted, when set, counts the refusals checked makes before serve
	// runs, in the metric serve counts its own answers in.
	counted func(*http.Request, error)
}

// routeTable maps paths to the routes under route_prefix. A route under
// subtree also serves every path below it.
type routeTable struct {
	prefix  string // every route's path starts with it
	exact   map[string]routeFunc
	subtree []subtreeRoute
}

// subtreeRoute serves every path that starts with prefix.
type subtreeRoute struct {
	prefix string // with its trailing '/'
	serve  routeFunc
}

// find returns the route serving path. A path outside the route prefix
// (nearly every proxied request) costs one prefix check.
func (t routeTable) find(path string) (routeFunc, bool) {
	if !strings.HasPrefix(path, t.prefix) {
		return nil, false
	}
	if fn, ok := t.exact[path]; ok {
		return fn, true
	}
	for _, st := range t.subtree {
		if strings.HasPrefix(path, st.prefix) {
			return st.serve, true
		}
	}
	return nil, false
}

func (h *Handler) newRoutes() routeTable {
	p := strings.TrimSuffix(h.RoutePrefix, "/") // route_prefix "/" serves /login
	post := []string{http.MethodPost}
	routes := map[string]route{
		p + "/login":    {methods: post, serve: h.login, counted: func(_ *http.Request, err error) { countLogin(err) }},
		p + "/refresh":  {methods: post, serve: h.refresh},
		p + "/logout":   {methods: post, serve: h.logout},
		p + "/userinfo": {methods: post, serve: h.userinfo},
		p + "/phone":    {methods: post, serve: h.phone},
		p + "/decrypt":  {methods: post, serve: h.decrypt},
		p + "/verify":   {noBody: true, serve: h.verify},
	}
	if h.Sandbox {
		routes[p+"/sandbox/encrypt"] = route{methods: post, serve: h.sandboxEncrypt}
		routes[p+"/sandbox/pay"] = route{methods: post, serve: h.sandboxPay}
	}
	if h.web != nil {
		get := []string{http.MethodGet, http.MethodHead}
		routes[p+"/web/login"] = route{methods: get, noBody: true, page: true, serve: h.webLoginStart}
		// Not HEAD: a prefetcher's or scanner's HEAD must not spend the
		// one-time state and code, or link.
		routes[p+"/web/callback"] = route{methods: []string{http.MethodGet}, noBody: true, page: true, serve: h.webCallback}
		// The link a web-view opens (GET); the mini program asks for it
		// with a POST, which is answered in JSON.
		routes[p+"/web/handoff"] = route{methods: []string{http.MethodGet, http.MethodPost}, page: true, serve: h.webHandoff, counted: countRefusedHandoff}
		if h.Sandbox && h.web.openBase == "" {
			// The fake's authorization pages, on this site, so a browser
			// runs the whole login with no WeChat account.
			for _, page := range []string{"/connect/oauth2/authorize", "/connect/qrconnect"} {
				routes[p+"/sandbox"+page] = route{methods: get, noBody: true, serve: h.sandboxWebPage(page)}
			}
		}
	}
	if h.assertion != nil {
		routes[p+"/jwks.json"] = route{methods: []string{http.MethodGet, http.MethodHead}, serve: h.jwks}
	}
	t := routeTable{
		prefix: p + "/",
		exact:  make(map[string]routeFunc, len(routes)),
	}
	for path, rt := range routes {
		rt.serve = h.audited(strings.TrimPrefix(path, p), rt.checked())
		t.exact[path] = rt.dispatch()
	}
	// Envoy's ext_authz path_prefix appends the request's path. (verify
	// is not audited: its entry is the checked route itself.)
	t.subtree = []subtreeRoute{{p + "/verify/", t.exact[p+"/verify"]}}
	return t
}

// checked returns the route's serve preceded by the checks every route
// makes before it acts: other methods are refused (405), and for a route
// that takes a body, bodies declared larger than apierr.MaxBody (413). The
// refusal is returned as the route's error, so the audit entry of the
// route records it like any other answer.
func (rt route) checked() routeFunc {
	var errMethods *apierr.Error
	if len(rt.methods) > 0 {
		errMethods = apierr.Method.Allowing(rt.methods)
	}
	serve, counted := rt.serve, rt.counted
	if counted == nil {
		counted = func(*http.Request, error) {}
	}
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		if errMethods != nil && !slices.Contains(rt.methods, r.Method) {
			counted(r, errMethods)
			return errMethods
		}
		if !rt.noBody && r.ContentLength > apierr.MaxBody {
			counted(r, apierr.PayloadTooLarge)
			return apierr.PayloadTooLarge
		}
		return serve(w, r, next)
	}
}

// dispatch returns the route as a routeFunc that writes an *apierr.Error the
// route returns as the answer. Whatever the answer, what a body route left
// unread of the body is read before the connection can close (see
// apierr.DiscardBody), or, for a body the answer must not wait for, the
// answer closes it (apierr.Unwanted); a route that takes no body answers
// at once and closes the connection if one comes (apierr.Ignored).
func (rt route) dispatch() routeFunc {
	if rt.noBody {
		return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
			if r.ContentLength != 0 {
				return rt.ignoringBody(w, r, next)
			}
			err := rt.serve(w, r, next)
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				return err
			}
			rt.write(w, r, ae)
			return nil
		}
	}
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		err := rt.serve(w, r, next)
		var ae *apierr.Error
		if !errors.As(err, &ae) {
			apierr.DiscardBody(w, r)
			return err
		}
		after := apierr.Unwanted(w, r)
		rt.write(w, r, ae)
		after()
		return nil
	}
}

// ignoringBody serves a request to a route that takes no body but was
// sent one: answered without waiting for it, and what the client sends
// anyway is read after the answer, for a graceful close.
func (rt route) ignoringBody(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	after := apierr.Ignored(w, r)
	err := rt.serve(w, r, next)
	var ae *apierr.Error
	if errors.As(err, &ae) {
		rt.write(w, r, ae)
		err = nil
	}
	if err == nil { // answered (an error is Caddy's to answer)
		after()
	}
	return err
}

// write writes ae as the answer, a page to a browser's page load on a
// page route.
func (rt route) write(w http.ResponseWriter, r *http.Request, ae *apierr.Error) {
	if rt.page {
		w.Header().Add("Vary", "Accept")
	}
	if rt.page && apierr.WantsPage(r) {
		apierr.WritePage(w, r, ae)
	} else {
		apierr.Write(w, r, ae)
	}
}

// skipBody reads a body the route has no use for, so that one sent
// chunked past apierr.MaxBody is refused (413) like any other, before the route
// acts.
func skipBody(w http.ResponseWriter, r *http.Request) *apierr.Error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	_, aerr := apierr.ReadBody(w, r)
	return aerr
}

// routeEvents are the audit events of the routes, by path under the
// prefix. Routes not named here are not audited.
var routeEvents = map[string]string{
	"/login":    "login",
	"/refresh":  "refresh",
	"/logout":   "logout",
	"/userinfo": "decrypt",
	"/decrypt":  "decrypt",
	"/phone":    "phone",

	"/web/callback": "web_login",
	"/web/handoff":  "web_handoff",
}

// audited wraps the route at path (under the prefix) so that each call
// writes one audit entry.
func (h *Handler) audited(path string, fn routeFunc) routeFunc {
	event, ok := routeEvents[path]
	if !ok {
		return fn
	}
	var extra []zap.Field
	if path == "/userinfo" {
		extra = []zap.Field{zap.String("data", "userinfo")}
	}
	return func(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
		// Who, from the token, read before the route passes the request
		// on without it; a login notes its user itself.
		note := new(audit.Note)
		if raw, n := credential.Bearer(r.Header["Authorization"]); n == 1 {
			if id, verr := h.tokens.VerifyCached(raw, time.Now()); verr == nil {
				*note = audit.Note{AppID: id.AppID, OpenID: id.OpenID, SID: id.SID}
			}
		} else if v, ok := h.webCookie(r); ok {
			if id, verr := h.tokens.OpenCookieCached(v, time.Now()); verr == nil {
				*note = audit.Note{AppID: id.AppID, OpenID: id.OpenID, SID: id.SID}
			}
		}
		r = audit.WithNote(r, note)
		err := fn(w, r, next)
		result := apierr.Result(err)
		if err == nil && note.Result != "" {
			result = note.Result
		}
		audit.Event(h.audit, r, event, result, note.AppID, note.OpenID, note.SID, extra...)
		return err
	}
}
