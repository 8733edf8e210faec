package wechatauth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// TestPushUpstreamGetsThePlaintextsType: in safe mode the upstream's
// Content-Type is that of the decrypted message, not of the envelope it
// came in, since the body it gets is the message.
func TestPushUpstreamGetsThePlaintextsType(t *testing.T) {
	types := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		types <- r.Header.Get("Content-Type")
	}))
	t.Cleanup(up.Close)
	p := &Push{AppID: benchPushApp, Token: benchPushToken, AESKey: benchPushKey, DeliveryConfig: DeliveryConfig{To: up.URL}}
	if err := p.Provision(benchContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup() })
	for _, tc := range []struct {
		name      string
		envelope  bool // JSON envelope
		plaintext string
		want      string
	}{
		{"JSON in an XML envelope", false, `{"ToUserName":"gh_0123456789ab","FromUserName":"oUSER0000000000000000000000s","CreateTime":1700000000,"MsgType":"text","Content":"a","MsgId":7600000000000000101}`, "application/json"},
		{"XML in a JSON envelope", true, `<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oUSER0000000000000000000000s]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[b]]></Content><MsgId>7600000000000000102</MsgId></xml>`, "text/xml"},
	} {
		push := wechattest.Push{Token: benchPushToken, AESKey: benchPushKey, AppID: benchPushApp, Safe: true, JSON: tc.envelope}
		req, err := push.Request("http://caddy/wechat/push", []byte(tc.plaintext))
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: answer %d %s", tc.name, w.Code, w.Body)
		}
		if got := <-types; got != tc.want {
			t.Errorf("%s: the upstream got Content-Type %q, want %q", tc.name, got, tc.want)
		}
	}
}
