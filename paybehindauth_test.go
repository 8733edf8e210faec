package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The check names each wechat_pay on a site that also has a wechat_auth,
// whatever their order or handle blocks, and no gateway on a site of its
// own, in raw JSON form.
func TestPayBehindAuthRules(t *testing.T) {
	const (
		auth  = `{"handler":"wechat_auth"}`
		pay   = `{"handler":"wechat_pay"}`
		proxy = `{"handler":"reverse_proxy"}`
		match = `[{"path":["/v3/*"]}]`
	)
	sub := func(routes string) string { return `{"handler":"subroute","routes":` + routes + `}` }
	site := func(host, handlers string) string {
		return `{"match":[{"host":["` + host + `"]}],"handle":[` + sub(`[{"handle":[`+handlers+`]}]`) + `],"terminal":true}`
	}
	tests := []struct {
		name, routes string
		want         string // a substring of the one warning; "" for none
	}{
		{"a site of its own", `[{"handle":[` + pay + `]}]`, ""},
		{"two site blocks on one server", `[` + site("api.example.com", auth+`,`+proxy) + `,` + site("pay.example.com", pay) + `]`, ""},
		{"auth, then pay (Caddyfile order)", `[{"handle":[` + auth + `]},{"match":` + match + `,"handle":[` + pay + `]}]`, "wechat_pay (server s, route 1, handler 0) is on a site with wechat_auth (server s, route 0, handler 0)"},
		{"one site block", `[` + site("api.example.com", auth+`,`+pay) + `]`, "wechat_pay (server s, route 0, handler 0 (subroute), route 0, handler 1)"},
		{"handle blocks side by side", `[{"group":"g","match":[{"path":["/api/*"]}],"handle":[` + sub(`[{"handle":[`+auth+`,`+proxy+`]}]`) + `]},{"group":"g","match":` + match + `,"handle":[` + sub(`[{"handle":[`+pay+`]}]`) + `]}]`, "route 1, handler 0 (subroute), route 0, handler 0"},
		{"pay before auth", `[{"handle":[` + pay + `]},{"handle":[` + auth + `,` + proxy + `]}]`, "route 0, handler 0"},
		{"two site blocks for one host", `[` + site("api.example.com", auth+`,`+proxy) + `,` + site("api.example.com", pay) + `]`, "wechat_pay (server s, route 1, handler 0 (subroute), route 0, handler 0)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var routes caddyhttp.RouteList
			if err := json.Unmarshal([]byte(tc.routes), &routes); err != nil {
				t.Fatal(err)
			}
			got := payBehindAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": {Routes: routes}}})
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("warned of a gateway on a site of its own: %v", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("got %q, want one warning with %q", got, tc.want)
			}
		})
	}
}

// A wechat_pay in a named route is on the site that invokes it; a named
// route invoking itself ends the search.
func TestPayBehindAuthFollowsInvoke(t *testing.T) {
	for _, tc := range []struct{ name, named, want string }{
		{"pay in the invoked route", `{"p":{"handle":[{"handler":"wechat_pay"}]}}`, "wechat_pay (server s, route 1, handler 0 (invoke p), route 0, handler 0) is on a site with wechat_auth"},
		{"a route invoking itself", `{"p":{"handle":[{"handler":"invoke","name":"p"}]}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &caddyhttp.Server{}
			if err := json.Unmarshal([]byte(`[{"handle":[{"handler":"wechat_auth"}]},{"match":[{"path":["/v3/*"]}],"handle":[{"handler":"invoke","name":"p"}]}]`), &srv.Routes); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.named), &srv.NamedRoutes); err != nil {
				t.Fatal(err)
			}
			got := payBehindAuth(&caddyhttp.App{Servers: map[string]*caddyhttp.Server{"s": srv}})
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
