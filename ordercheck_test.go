package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
		{"auth inside a dead subroute", `[{"handle":[` + proxy + `]},{"handle":[{"handler":"subroute","routes":[{"handle":[` + auth + `]}]}]}]`, []string{"route 1, handler 0 (subroute), route 0, handler 0"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var routes caddyhttp.RouteList
			if err := json.Unmarshal([]byte(tc.routes), &routes); err != nil {
				t.Fatal(err)
			}
			srv := &caddyhttp.Server{Routes: routes}
			if tc.named != "" {
				if err := json.Unmarshal([]byte(tc.named), &srv.NamedRoutes); err != nil {
					t.Fatal(err)
				}
			}
			got := unreachableAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": srv}})
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("refused a reachable wechat_auth: %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d problems %v, want 1", len(got), got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("%q lacks %q", got[0], w)
				}
			}
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
	msg := joinProblems(unreachableAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": {Routes: routes}}}))
	if !strings.Contains(msg, "`wechat_pay_notify /pay/notify { … }`") || strings.Contains(msg, "Put wechat_auth before") {
		t.Fatalf("message %q: want the fix for a path-less receiver only", msg)
	}
	msg = joinProblems([]string{"wechat_auth (x) can never run: reverse_proxy (y) precedes it"})
	if !strings.Contains(msg, "Put wechat_auth before") {
		t.Fatalf("message %q lost the fix for a handler that answers", msg)
	}
}
