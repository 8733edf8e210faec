package wechatauth

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestGatewayCaddyfileFillsItsJSONFields(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"app lines as in wechat_auth", `wechat_api {
			app_id wxA
			app_secret {env.A}
			app wxB sb
			allow /wxa/msg_sec_check
		}`, `{"apps":[{"app_id":"wxA","app_secret":"{env.A}"},{"app_id":"wxB","app_secret":"sb"}],"allow":["/wxa/msg_sec_check"]}`},
		{"every line", `wechat_api {
			sandbox
			api_base http://127.0.0.1:9001
			timeout 3s
			store redis redis://127.0.0.1:6379/0
			signing_key {env.KEY}
			allow /cgi-bin/message/subscribe/send /wxa/getwxacodeunlimit
			allow /wxa/checksession
			max_body 1MiB
		}`, `{"api_base":"http://127.0.0.1:9001","sandbox":true,"timeout":3000000000,"store":"redis://127.0.0.1:6379/0","signing_key":"{env.KEY}","allow":["/cgi-bin/message/subscribe/send","/wxa/getwxacodeunlimit","/wxa/checksession"],"max_body":1048576}`},
		{"allow all", "wechat_api {\n\tsandbox\n\tallow *\n}", `{"sandbox":true,"allow":["*"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g APIGateway
			if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input)); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(g)
			if string(got) != tt.want {
				t.Fatalf("JSON\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestGatewayCaddyfileRefusesBadLines(t *testing.T) {
	for _, tt := range []struct{ input, want string }{
		{"wechat_api {\n\tallow\n}", "allow needs"},
		{"wechat_api {\n\tmax_body lots\n}", "max_body"},
		{"wechat_api {\n\troute_prefix /wx\n}", "unknown subdirective"},
		{"wechat_api {\n\tapp wxA s extra\n}", "app takes"},
		{"wechat_api extra", "wrong argument count"},
	} {
		var g APIGateway
		err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want one saying %q", tt.input, err, tt.want)
		}
	}
}

func TestGatewayAllowListIsChecked(t *testing.T) {
	for _, tt := range []struct {
		allow []string
		want  string
	}{
		{nil, "allow lists no path"},
		{[]string{"wxa/msg_sec_check"}, "a path is written"},
		{[]string{"/wxa/../cgi-bin/token"}, "a path is written"},
		{[]string{"/cgi-bin/token"}, "never forwarded"},
		{[]string{"/CGI-BIN/STABLE_TOKEN"}, "never forwarded"},
		{[]string{"/wxa/msg_sec_check;x"}, "a path is written"},
		{[]string{"/wxa/msg sec"}, "a path is written"},
		{[]string{"/wxa/msg_sec_check."}, "a path is written"},
	} {
		g := APIGateway{Allow: tt.allow}
		if err := g.checkAllow(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("allow %q: %v, want an error saying %q", tt.allow, err, tt.want)
		}
	}
}

func TestSplitQueryRemovesTheCallersToken(t *testing.T) {
	for _, tt := range []struct {
		raw, rest, from string
	}{
		{"", "", ""},
		{"lang=zh_CN", "lang=zh_CN", ""},
		{"access_token=x&lang=zh_CN", "lang=zh_CN", ""},
		{"lang=zh_CN&access%5Ftoken=x&access_token=y", "lang=zh_CN", ""},
		{"from_appid=wxB&a=1", "a=1", "wxB"},
		{"a=1&&b=2", "a=1&&b=2", ""}, // left as the caller wrote it
		{"access_token=x&&b=2", "b=2", ""},
	} {
		q, aerr := splitQuery(tt.raw, false)
		if aerr != nil || q.rest != tt.rest || q.fromAppID != tt.from {
			t.Errorf("%q: rest %q from %q (%v), want %q %q", tt.raw, q.rest, q.fromAppID, aerr, tt.rest, tt.from)
		}
	}
	q, aerr := splitQuery("openid=oA&signature=forged&sig_method=md5", true)
	if aerr != nil || q.rest != "openid=oA" || q.openid != "oA" {
		t.Errorf("session-key query: %+v %v", q, aerr)
	}
	for _, raw := range []string{"", "openid=o%0Ax", "openid=oA&openid=oB", "from_appid=a&from_appid=b&openid=oA", "%zz=1&openid=oA"} {
		if _, aerr := splitQuery(raw, true); aerr == nil {
			t.Errorf("%q accepted", raw)
		}
	}
}
