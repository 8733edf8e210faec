package wechatauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// TestPushPassiveReplyIsTheUpstreamsBodyExactly: the reply WeChat gets is
// the upstream's body byte for byte, in safe mode once decrypted and in
// plain mode as it is, even when the body starts or ends with white space
// (a trailing newline is what most frameworks write).
func TestPushPassiveReplyIsTheUpstreamsBodyExactly(t *testing.T) {
	const answer = "\n<xml><ToUserName><![CDATA[oUSER]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(answer))
	}))
	t.Cleanup(up.Close)
	for _, safe := range []bool{true, false} {
		t.Run(map[bool]string{true: "safe", false: "plain"}[safe], func(t *testing.T) {
			p := &Push{AppID: benchPushApp, Token: benchPushToken, DeliveryConfig: DeliveryConfig{To: up.URL}}
			if safe {
				p.AESKey = benchPushKey
			}
			if err := p.Provision(benchContext(t)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Cleanup() })
			push := wechattest.Push{Token: benchPushToken, AppID: benchPushApp, Safe: safe, Nonce: "24680"}
			if safe {
				push.AESKey = benchPushKey
			}
			req, err := push.Request("http://caddy/wechat/push", push.Text("oUSER0000000000000000000000r", "reply"))
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, req, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("answer %d %s", w.Code, w.Body)
			}
			got := w.Body.String()
			if safe {
				env, err := msgcrypt.ParseEnvelope(w.Body.Bytes())
				if err != nil {
					t.Fatalf("reply envelope: %v: %s", err, w.Body)
				}
				c, _ := msgcrypt.New(benchPushToken, benchPushKey, benchPushApp)
				msg, err := c.Decrypt(env.Encrypt)
				if err != nil {
					t.Fatalf("reply does not decrypt: %v", err)
				}
				got = string(msg)
			}
			if got != answer {
				t.Fatalf("WeChat gets the reply %q; want the upstream's body %q exactly", got, answer)
			}
		})
	}
}
