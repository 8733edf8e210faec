package caddytest

// Acceptance point covered here (issue 20, point 8): a wechat_auth that can
// never run, because a handler that answers every request precedes it in
// the same route list, is refused by `caddy validate` (adapt and provision,
// nothing started) and by a load into a running Caddy (what `caddy run`
// and `caddy reload` do), with a message naming the place and the handler;
// correct layouts, conditional handlers before it and forward_auth-style
// proxies stay silent. A named route that invoke runs counts as written
// where invoke is; a reverse_proxy whose handle_response blocks all answer
// answers every request.

import (
	"fmt"
	"strings"
	"testing"
)

// orderingSite returns a Caddyfile whose site block holds body, with
// wechat_auth's settings in place of AUTH.
func orderingSite(global, body string) string {
	auth := fmt.Sprintf("wechat_auth {\n\t\t\tapp_id %s\n\t\t\tapp_secret %s\n\t\t\tsigning_key %s\n\t\t}", testAppID, testSecret, testSigningKey)
	return globalOptions(global) + fmt.Sprintf("\nhttp://localhost:9080 {\n%s\n}\n", strings.ReplaceAll(body, "AUTH", auth))
}

func TestMisorderedWeChatAuthIsRefused(t *testing.T) {
	tests := []struct {
		name, global, body string
		want               []string
	}{
		{"reverse_proxy before it in a route", "",
			"\troute {\n\t\treverse_proxy 127.0.0.1:9\n\t\tAUTH\n\t}",
			[]string{"wechat_auth", "can never run", "reverse_proxy", "precedes it"}},
		{"order wechat_auth after reverse_proxy", "\torder wechat_auth after reverse_proxy",
			"\tAUTH\n\treverse_proxy 127.0.0.1:9",
			[]string{"wechat_auth", "can never run", "reverse_proxy"}},
		{"respond before it in a route", "",
			"\troute {\n\t\trespond \"hello\"\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}",
			[]string{"wechat_auth", "can never run", "static_response"}},
		{"file_server in a handle before it", "",
			"\troute {\n\t\thandle {\n\t\t\tfile_server\n\t\t}\n\t\tAUTH\n\t}",
			[]string{"wechat_auth", "can never run", "file_server"}},
		{"a named route that proxies, invoked before it", "",
			"\troute {\n\t\tinvoke proxy\n\t\tAUTH\n\t}\n}\n\n&(proxy) {\n\treverse_proxy 127.0.0.1:9",
			[]string{"wechat_auth", "can never run", "reverse_proxy", "(invoke proxy)"}},
		{"reverse_proxy whose handle_response answers, before it", "",
			"\troute {\n\t\treverse_proxy 127.0.0.1:9 {\n\t\t\t@ok status 2xx\n\t\t\thandle_response @ok {\n\t\t\t\trespond \"x\"\n\t\t\t}\n\t\t}\n\t\tAUTH\n\t}",
			[]string{"wechat_auth", "can never run", "reverse_proxy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cf := orderingSite(tc.global, tc.body)
			err := validateCaddyfile(cf)
			if err == nil {
				t.Fatalf("caddy validate accepted a wechat_auth that can never run:\n%s", cf)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validate error lacks %q: %v", w, err)
				}
			}
			t.Logf("caddy validate: %v", err)
			msg := loadError(t, cf)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("load error lacks %q: %s", w, msg)
				}
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(msg, testSecret) {
				t.Error("the error holds the app secret")
			}
		})
	}
}

func TestWellOrderedWeChatAuthLoads(t *testing.T) {
	tests := []struct{ name, global, body string }{
		{"default order", "", "\tAUTH\n\treverse_proxy 127.0.0.1:9"},
		{"route in the right order", "", "\troute {\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}"},
		{"a conditional proxy before it", "", "\troute {\n\t\treverse_proxy /other/* 127.0.0.1:9\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}"},
		{"a matched handle before it", "", "\troute {\n\t\thandle /static/* {\n\t\t\tfile_server\n\t\t}\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}"},
		{"forward_auth before it", "", "\troute {\n\t\tforward_auth 127.0.0.1:9 {\n\t\t\turi /check\n\t\t}\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}"},
		{"a named route that sets a header, invoked before it", "", "\troute {\n\t\tinvoke hdr\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}\n}\n\n&(hdr) {\n\theader X-Test 1"},
		{"middleware before it", "", "\troute {\n\t\theader X-Test 1\n\t\tencode gzip\n\t\tAUTH\n\t\treverse_proxy 127.0.0.1:9\n\t}"},
		{"order wechat_auth before reverse_proxy", "\torder wechat_auth before reverse_proxy", "\tAUTH\n\treverse_proxy 127.0.0.1:9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cf := orderingSite(tc.global, tc.body)
			if err := validateCaddyfile(cf); err != nil {
				t.Fatalf("caddy validate refused a correct config: %v\n%s", err, cf)
			}
			loadCaddy(t, cf)
		})
	}
}
