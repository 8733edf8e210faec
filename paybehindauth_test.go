package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The walk names each wechat_pay a request may reach after a wechat_auth,
// by Caddy's rules for route lists and groups, in raw JSON form.
func TestPayBehindAuthRules(t *testing.T) {
	const (
		auth  = `{"handler":"wechat_auth"}`
		pay   = `{"handler":"wechat_pay"}`
		proxy = `{"handler":"reverse_proxy"}`
		match = `[{"path":["/v3/*"]}]`
	)
	sub := func(routes string) string { return `{"handler":"subroute","routes":` + routes + `}` }
	tests := []struct {
		name, routes string
		want         string // a substring of the one warning; "" for none
	}{
		{"a site of its own", `[{"handle":[` + pay + `]}]`, ""},
		{"pay before auth", `[{"handle":[` + pay + `]},{"handle":[` + auth + `,` + proxy + `]}]`, ""},
		{"auth, then pay (Caddyfile order)", `[{"handle":[` + auth + `]},{"match":` + match + `,"handle":[` + pay + `]}]`, "wechat_pay (server s, route 1, handler 0) is reached after wechat_auth (server s, route 0, handler 0)"},
		{"auth before pay in one route", `[{"handle":[` + auth + `,` + pay + `]}]`, "route 0, handler 1"},
		{"auth on some paths only", `[{"match":[{"path":["/api/*"]}],"handle":[` + auth + `]},{"handle":[` + pay + `]}]`, "route 1, handler 0"},
		{"auth in a subroute before", `[{"handle":[` + sub(`[{"handle":[`+auth+`]}]`) + `]},{"handle":[` + pay + `]}]`, "after wechat_auth (server s, route 0, handler 0 (subroute), route 0, handler 0)"},
		{"pay in a subroute after auth", `[{"handle":[` + auth + `]},{"handle":[` + sub(`[{"handle":[`+pay+`]}]`) + `]}]`, "route 1, handler 0 (subroute), route 0, handler 0"},
		{"separate handle blocks", `[{"group":"g","match":[{"path":["/api/*"]}],"handle":[` + sub(`[{"handle":[`+auth+`,`+proxy+`]}]`) + `]},{"group":"g","match":` + match + `,"handle":[` + sub(`[{"handle":[`+pay+`]}]`) + `]}]`, ""},
		{"auth after pay in one route", `[{"handle":[` + pay + `,` + auth + `]}]`, ""},
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
					t.Fatalf("warned of a gateway no wechat_auth precedes: %v", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("got %q, want one warning with %q", got, tc.want)
			}
		})
	}
}
