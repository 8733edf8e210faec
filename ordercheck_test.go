package wechatauth

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy/fastcgi"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy/forwardauth"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
)

// TestUnreachableAuthRules: the route walk names exactly the wechat_auth
// that can never run, by Caddy's rules for route lists, groups and the
// terminal flag, in raw JSON form.
func TestUnreachableAuthRules(t *testing.T) {
	const (
		auth   = `{"handler":"wechat_auth"}`
		proxy  = `{"handler":"reverse_proxy"}`
		header = `{"handler":"headers"}`
		match  = `[{"path":["/x/*"]}]`
	)
	tests := []struct {
		name   string
		routes string
		want   []string // substrings of the one problem; none when empty
		named  string   // the server's named routes, JSON
	}{
		{"auth first", `[{"handle":[` + auth + `,` + proxy + `]}]`, nil, ""},
		{"proxy first, same route", `[{"handle":[` + proxy + `,` + auth + `]}]`, []string{"route 0, handler 1", "reverse_proxy (server s, route 0, handler 0)"}, ""},
		{"proxy first, same route with a matcher", `[{"match":` + match + `,"handle":[` + proxy + `,` + auth + `]}]`, []string{"reverse_proxy"}, ""},
		{"proxy in an earlier route", `[{"handle":[` + proxy + `]},{"handle":[` + auth + `]}]`, []string{"route 1, handler 0"}, ""},
		{"proxy in an earlier matched route", `[{"match":` + match + `,"handle":[` + proxy + `]},{"handle":[` + auth + `]}]`, nil, ""},
		{"middleware first", `[{"handle":[` + header + `,` + auth + `]}]`, nil, ""},
		{"unknown handler first", `[{"handle":[{"handler":"rate_limit"},` + auth + `]}]`, nil, ""},
		{"forward_auth first", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{}]},` + auth + `]}]`, nil, ""},
		{"file_server pass_thru first", `[{"handle":[{"handler":"file_server","pass_thru":true},` + auth + `]}]`, nil, ""},
		{"terminal route first", `[{"handle":[` + header + `],"terminal":true},{"handle":[` + auth + `]}]`, []string{"terminal route"}, ""},
		{"group taken", `[{"group":"g","handle":[` + header + `]},{"group":"g","handle":[` + auth + `]}]`, []string{"group \"g\""}, ""},
		{"group after a matched member", `[{"group":"g","match":` + match + `,"handle":[` + header + `]},{"group":"g","handle":[` + auth + `]}]`, nil, ""},
		{"nested subroute answers", `[{"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"static_response"}]}]}]},{"handle":[` + auth + `]}]`, []string{"static_response"}, ""},
		{"nested subroute answers some", `[{"handle":[{"handler":"subroute","routes":[{"match":` + match + `,"handle":[{"handler":"static_response"}]}]}]},{"handle":[` + auth + `]}]`, nil, ""},
		{"path-less push receiver first", `[{"handle":[{"handler":"wechat_push"},` + auth + `]}]`, []string{"wechat_push (server s, route 0, handler 0) has no path: give it the one WeChat posts to (`wechat_push /wechat/push { … }`)"}, ""},
		{"path-less push receiver first in a site block", `[{"match":[{"host":["api.example.com"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"wechat_push"},` + auth + `]}]}],"terminal":true}]`, []string{"wechat_push (server s, route 0, handler 0 (subroute), route 0, handler 0) has no path: give it the one WeChat posts to"}, ""},
		{"push receiver on its path first", `[{"match":` + match + `,"handle":[{"handler":"wechat_push"}]},{"handle":[` + auth + `]}]`, nil, ""},
		// On its path, it has one: the fix is to move wechat_auth.
		{"push receiver on its path, wechat_auth after it there", `[{"match":` + match + `,"handle":[{"handler":"wechat_push"},` + auth + `]}]`, []string{"wechat_push (server s, route 0, handler 0) precedes it"}, ""},
		{"push receiver in a matched subroute, wechat_auth after it there", `[{"match":` + match + `,"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"wechat_push"},` + auth + `]}]}]}]`, []string{"wechat_push (server s, route 0, handler 0 (subroute), route 0, handler 0) precedes it"}, ""},
		{"invoked route proxies", `[{"handle":[{"handler":"invoke","name":"p"},` + auth + `]}]`, []string{"route 0, handler 1", "reverse_proxy (server s, route 0, handler 0 (invoke p), route 0, handler 0)"}, `{"p":{"handle":[` + proxy + `]}}`},
		{"invoked route proxies some paths", `[{"handle":[{"handler":"invoke","name":"p"},` + auth + `]}]`, nil, `{"p":{"match":` + match + `,"handle":[` + proxy + `]}}`},
		{"invoked route adds headers", `[{"handle":[{"handler":"invoke","name":"p"},` + auth + `]}]`, nil, `{"p":{"handle":[` + header + `]}}`},
		{"invoked route invokes itself", `[{"handle":[{"handler":"invoke","name":"p"},` + auth + `]}]`, nil, `{"p":{"handle":[{"handler":"invoke","name":"p"}]}}`},
		{"invoked route unknown", `[{"handle":[{"handler":"invoke","name":"q"},` + auth + `]}]`, nil, `{"p":{"handle":[` + proxy + `]}}`},
		{"proxy whose handle_response answers", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"match":{"status_code":[2]},"routes":[{"handle":[{"handler":"static_response"}]}]}]},` + auth + `]}]`, []string{"reverse_proxy (server s, route 0, handler 0)"}, ""},
		{"proxy whose handle_response sets the status", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"status_code":"404"}]},` + auth + `]}]`, []string{"reverse_proxy"}, ""},
		{"proxy with one handle_response going on", `[{"handle":[{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[{"handler":"static_response"}]}]},{"match":{"status_code":[2]},"routes":[{"handle":[` + header + `]}]}]},` + auth + `]}]`, nil, ""},
		{"proxy on every path first", `[{"match":[{"path":["/*"]}],"handle":[` + proxy + `]},{"handle":[` + auth + `]}]`, []string{"reverse_proxy (server s, route 0, handler 0)"}, ""},
		// A named route runs where it is invoked and reached: one site's
		// invoke behind a redirect adds nothing to another's.
		{"named route shared, one invoke dead", `[{"match":[{"host":["a"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"invoke","name":"app"}]}]}],"terminal":true},{"match":[{"host":["b"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"static_response"},{"handler":"invoke","name":"app"}]}]}],"terminal":true}]`, nil, `{"app":{"handle":[` + auth + `,` + proxy + `]}}`},
		{"auth inside a dead subroute", `[{"handle":[` + proxy + `]},{"handle":[{"handler":"subroute","routes":[{"handle":[` + auth + `]}]}]}]`, []string{"route 1, handler 0 (subroute), route 0, handler 0"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := walkJSON(t, tc.routes, tc.named)
			wantOneWith(t, "problem", got, tc.want)
		})
	}
}

// A receiver without a path is fixed by giving it one, not by moving
// wechat_auth before it (which would ask WeChat's posts for a token).
func TestUnreachableAuthBehindAPathlessReceiverSaysGiveItAPath(t *testing.T) {
	var routes caddyhttp.RouteList
	if err := json.Unmarshal([]byte(`[{"handle":[{"handler":"wechat_pay_notify"},{"handler":"wechat_auth"}]}]`), &routes); err != nil {
		t.Fatal(err)
	}
	problems, _ := unreachableAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": {Routes: routes}}})
	msg := joinProblems(problems)
	if !strings.Contains(msg, "`wechat_pay_notify /pay/notify { … }`") || strings.Contains(msg, "Put wechat_auth before") {
		t.Fatalf("message %q: want the fix for a path-less receiver only", msg)
	}
	msg = joinProblems([]string{"wechat_auth (x) can never run: reverse_proxy (y) precedes it"})
	if !strings.Contains(msg, "Put wechat_auth before") {
		t.Fatalf("message %q lost the fix for a handler that answers", msg)
	}
}

// A reverse_proxy behind a matcher before a wechat_auth takes the requests
// it matches to its upstream unauthenticated: the check warns, naming
// both, unless the proxy is another site's or its group's.
func TestAuthPassedByAMatchedProxyIsWarned(t *testing.T) {
	const (
		auth  = `{"handler":"wechat_auth"}`
		proxy = `{"handler":"reverse_proxy"}`
		match = `[{"path":["/api/*"]}]`
		hosts = `[{"host":["other.example.com"]}]`
	)
	tests := []struct {
		name, routes, named string
		want                []string // substrings of the one warning; none when empty
	}{
		{"matched proxy route first", `[{"match":` + match + `,"handle":[` + proxy + `]},{"handle":[` + auth + `]}]`, "",
			[]string{"wechat_auth (server s, route 1, handler 0) does not see the requests reverse_proxy (server s, route 0, handler 0) takes", "`public`"}},
		{"a handle that proxies first, in a route", `[{"handle":[{"handler":"subroute","routes":[{"match":` + match + `,"handle":[{"handler":"subroute","routes":[{"handle":[` + proxy + `]}]}]},{"handle":[` + auth + `]}]}]}]`, "",
			[]string{"reverse_proxy (server s, route 0, handler 0 (subroute), route 0, handler 0 (subroute), route 0, handler 0)"}},
		{"php_fastcgi-like subroute first", `[{"handle":[{"handler":"subroute","routes":[{"match":[{"file":{}}],"handle":[{"handler":"rewrite"}]},{"match":[{"path":["*.php"]}],"handle":[` + proxy + `]}]},` + auth + `]}]`, "",
			[]string{"wechat_auth (server s, route 0, handler 1)", "reverse_proxy (server s, route 0, handler 0 (subroute), route 1, handler 0)"}},
		{"invoked named route with a matched proxy", `[{"handle":[{"handler":"invoke","name":"p"},` + auth + `]}]`, `{"p":{"match":` + match + `,"handle":[` + proxy + `]}}`,
			[]string{"(invoke p)"}},
		{"the proxy's group holds the wechat_auth", `[{"group":"g","match":` + match + `,"handle":[` + proxy + `]},{"group":"g","handle":[` + auth + `]}]`, "", nil},
		{"another site's proxy", `[{"match":` + hosts + `,"handle":[` + proxy + `],"terminal":true},{"handle":[` + auth + `]}]`, "", nil},
		{"matched file_server first", `[{"match":` + match + `,"handle":[{"handler":"file_server"}]},{"handle":[` + auth + `]}]`, "", nil},
		{"forward_auth first", `[{"match":` + match + `,"handle":[{"handler":"reverse_proxy","handle_response":[{}]}]},{"handle":[` + auth + `]}]`, "", nil},
		{"matched proxy after it", `[{"handle":[` + auth + `]},{"match":` + match + `,"handle":[` + proxy + `]}]`, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems, warnings := walkJSON(t, tc.routes, tc.named)
			if len(problems) != 0 {
				t.Fatalf("refused: %v", problems)
			}
			wantOneWith(t, "warning", warnings, tc.want)
		})
	}
}

// The warning on Caddyfile layouts as users write them: a `handle` or a
// matched `reverse_proxy` before wechat_auth inside `route`, and
// php_fastcgi before it; the directives' default order stays silent.
func TestCaddyfileLayoutsPassedByAProxyAreWarned(t *testing.T) {
	const auth = "wechat_auth {\n\t\tsandbox\n\t}"
	tests := []struct {
		name, global, body string
		warned             bool
	}{
		{"handle before it in a route", "", "route {\n\thandle /api/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\tAUTH\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"a matched reverse_proxy before it in a route", "", "route {\n\treverse_proxy /api/* 127.0.0.1:9\n\tAUTH\n\treverse_proxy 127.0.0.1:9\n}", true},
		{"php_fastcgi before it in a route", "", "route {\n\tphp_fastcgi 127.0.0.1:9\n\tAUTH\n}", true},
		{"order wechat_auth last, php_fastcgi", "order wechat_auth last", "root * /srv\nAUTH\nphp_fastcgi 127.0.0.1:9", true},
		{"default order", "", "AUTH\nhandle /api/* {\n\treverse_proxy 127.0.0.1:9\n}\nphp_fastcgi 127.0.0.1:9\nreverse_proxy 127.0.0.1:9", false},
		{"handle blocks, wechat_auth in one", "", "handle /api/* {\n\treverse_proxy 127.0.0.1:9\n}\nhandle {\n\tAUTH\n\treverse_proxy 127.0.0.1:9\n}", false},
		{"another site proxies", "", "AUTH\nreverse_proxy 127.0.0.1:9\n}\n\nhttp://other.localhost {\nreverse_proxy /api/* 127.0.0.1:9", false},
		{"a site block for a path of this host proxies", "", "AUTH\nreverse_proxy 127.0.0.1:9\n}\n\nhttp://localhost/api/* {\nreverse_proxy 127.0.0.1:9", true},
		{"the handle before it authenticates", "", "route {\n\thandle /admin/* {\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\tAUTH\n\treverse_proxy 127.0.0.1:10\n}", false},
		{"the handle before it has basic_auth", "", "route {\n\thandle /admin/* {\n\t\tbasic_auth {\n\t\t\tadmin $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG\n\t\t}\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\tAUTH\n\treverse_proxy 127.0.0.1:10\n}", false},
		{"wechat_auth at the site, then a handle in a route", "", "AUTH\nroute {\n\thandle /api/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\treverse_proxy 127.0.0.1:10\n}", false},
		{"the handle before it has forward_auth", "", "route {\n\thandle /admin/* {\n\t\tforward_auth 127.0.0.1:9091 {\n\t\t\turi /api/verify\n\t\t}\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\tAUTH\n\treverse_proxy 127.0.0.1:10\n}", false},
		{"a matched proxy between handle blocks", "", "route {\n\thandle /a/* {\n\t\treverse_proxy 127.0.0.1:9\n\t}\n\treverse_proxy /x/* 127.0.0.1:9\n\thandle {\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:10\n\t}\n}", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cf := "{\n" + tc.global + "\n}\n\nhttp://localhost {\n" + strings.ReplaceAll(tc.body, "AUTH", auth) + "\n}\n"
			out, err := adapt(t, cf)
			if err != nil {
				t.Fatalf("%v\n%s", err, cf)
			}
			var cfg struct {
				Apps struct {
					HTTP caddyhttp.App `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal([]byte(out), &cfg); err != nil {
				t.Fatal(err)
			}
			problems, warnings := unreachableAuth(&cfg.Apps.HTTP)
			t.Logf("warnings: %q", warnings)
			if len(problems) != 0 {
				t.Fatalf("refused: %v", problems)
			}
			if tc.warned != (len(warnings) == 1) || len(warnings) > 1 {
				t.Fatalf("warnings %q, want one: %v\n%s", warnings, tc.warned, out)
			}
		})
	}
}

// Named routes that each invoke the next twice make a walk of 2^depth
// routes: the walk follows a bounded number of invokes and ends.
func TestUnreachableAuthEndsOnAnInvokeChain(t *testing.T) {
	const depth = 40
	for _, tc := range []struct{ name, step string }{
		{"in the route", `%[1]s,%[1]s`},
		// A proxy's handle_response blocks are walked to learn whether
		// they answer: the same bound holds there.
		{"in handle_response", `{"handler":"reverse_proxy","handle_response":[{"routes":[{"handle":[%[1]s,%[1]s]}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			named := map[string]*caddyhttp.Route{}
			for i := range depth {
				next := fmt.Sprintf(`{"handler":"invoke","name":"r%d"}`, i+1)
				var r caddyhttp.Route
				if err := json.Unmarshal([]byte(`{"handle":[`+fmt.Sprintf(tc.step, next)+`]}`), &r); err != nil {
					t.Fatal(err)
				}
				named[fmt.Sprintf("r%d", i)] = &r
			}
			named[fmt.Sprintf("r%d", depth)] = &caddyhttp.Route{HandlersRaw: []json.RawMessage{json.RawMessage(`{"handler":"headers"}`)}}
			var routes caddyhttp.RouteList
			if err := json.Unmarshal([]byte(`[{"handle":[{"handler":"wechat_auth"},{"handler":"invoke","name":"r0"}]}]`), &routes); err != nil {
				t.Fatal(err)
			}
			problems, warnings := unreachableAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": {Routes: routes, NamedRoutes: named}}})
			if len(problems)+len(warnings) != 0 {
				t.Fatalf("problems %v, warnings %v", problems, warnings)
			}
		})
	}
}

// walkJSON runs the check on one server "s" with routes and named routes
// given as JSON (named may be "").
func walkJSON(t *testing.T, routes, named string) (problems, warnings []string) {
	t.Helper()
	srv := &caddyhttp.Server{}
	if err := json.Unmarshal([]byte(routes), &srv.Routes); err != nil {
		t.Fatal(err)
	}
	if named != "" {
		if err := json.Unmarshal([]byte(named), &srv.NamedRoutes); err != nil {
			t.Fatal(err)
		}
	}
	return unreachableAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": srv}})
}

// wantOneWith checks that got holds no sentence when want is empty, else
// exactly one, holding every string of want.
func wantOneWith(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		if len(got) != 0 {
			t.Fatalf("got a %s, want none: %v", what, got)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("got %d of %s %v, want 1", len(got), what, got)
	}
	for _, w := range want {
		if !strings.Contains(got[0], w) {
			t.Errorf("%q lacks %q", got[0], w)
		}
	}
}
