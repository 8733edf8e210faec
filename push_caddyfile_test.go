package wechatauth

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestPushCaddyfileReadsEveryLine(t *testing.T) {
	d := caddyfile.NewTestDispenser(`wechat_push {
		app_id wx1234567890abcdef
		token {env.T}
		aes_key {env.K}
		to http://127.0.0.1:3000/push
		max_age 0
		timeout 3s
		retry_for 1h
		store redis redis://127.0.0.1:6379
		assertion X-Caddy-Assertion
		assertion_key {file./k.pem}
	}`)
	var p Push
	if err := p.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	want := Push{AppID: "wx1234567890abcdef", Token: "{env.T}", AESKey: "{env.K}", DeliveryConfig: DeliveryConfig{
		To: "http://127.0.0.1:3000/push", Timeout: caddy.Duration(3 * time.Second), RetryFor: caddy.Duration(time.Hour),
		Store: "redis://127.0.0.1:6379", Assertion: true, AssertionHeader: "X-Caddy-Assertion", AssertionKey: "{file./k.pem}"}}
	if p.MaxAge == nil || *p.MaxAge != 0 {
		t.Errorf("max_age 0 must be kept as an explicit 0 (the check off), got %v", p.MaxAge)
	}
	p.MaxAge = nil
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}

func TestPushCaddyfileRefusesBadLines(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"wechat_push {\n\tmax_age soon\n}", "max_age"},
		{"wechat_push {\n\tassertion A B\n}", "assertion takes at most"},
		{"wechat_push {\n\ttimeout 0\n}", "timeout"},
		{"wechat_push {\n\tapp wx1 s\n}", "unknown subdirective"},
		{"wechat_push {\n\tstore file\n}", "store takes"},
	} {
		var p Push
		err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %q", c.in, err, c.want)
		}
	}
}

func TestPushStoreMemoryIsNotTheAppStore(t *testing.T) {
	var p Push
	if err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser("wechat_push {\n\tstore memory\n}")); err != nil {
		t.Fatal(err)
	}
	if p.Store != "memory" {
		t.Fatalf("store memory read as %q: the wechat app's store would be used instead", p.Store)
	}
}
