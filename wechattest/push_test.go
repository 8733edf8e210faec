package wechattest_test

import (
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// WeChat's own examples, from the mini program message-push documentation
// (https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html)
// and the third-party platform one
// (https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/message_push.html):
// Push must read them as WeChat wrote them, independently of the receiver.
var docPush = wechattest.Push{Token: "AAAAA", AESKey: strings.Repeat("A", 43), AppID: "wxba5fad812f8e6fb9", JSON: true, Safe: true}

func TestPushDecryptsTheDocumentedPush(t *testing.T) {
	got, err := docPush.Decrypt("+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=")
	want := `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`
	if err != nil || string(got) != want {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
}

func TestPushOpensTheDocumentedReplies(t *testing.T) {
	r, err := docPush.OpenReply([]byte(`{
    "Encrypt": "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==",
    "MsgSignature": "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
    "TimeStamp": 1713424427,
    "Nonce": "415670741"
}`))
	if err != nil || string(r.Message) != `{"demo_resp":"good luck"}` || r.Nonce != "415670741" || r.TimeStamp != "1713424427" {
		t.Fatalf("JSON reply = %+v (%q), %v", r, r.Message, err)
	}
	tpp := wechattest.Push{Token: "AAAAA", AESKey: strings.Repeat("A", 43), AppID: "wx134c8103faa5a59e", Safe: true}
	r, err = tpp.OpenReply([]byte("<xml>\n<Encrypt><![CDATA[hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7]]></Encrypt>\n<MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]></MsgSignature>\n<TimeStamp>1713424427</TimeStamp>\n<Nonce><![CDATA[415670741]]></Nonce>\n</xml>"))
	if err != nil || string(r.Message) != `<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>` {
		t.Fatalf("XML reply = %q, %v", r.Message, err)
	}
	// Another app's key, or a tampered signature, is refused.
	other := tpp
	other.AppID = "wx0000000000000000"
	if _, err := other.OpenReply([]byte("<xml><Encrypt><![CDATA[hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7]]></Encrypt><MsgSignature>03e0812039325c2712ef5f0f980fd14c70d6e307</MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce>415670741</Nonce></xml>")); err == nil {
		t.Error("a reply for another appid opened")
	}
	if _, err := tpp.OpenReply([]byte("<xml><Encrypt><![CDATA[hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7]]></Encrypt><MsgSignature>13e0812039325c2712ef5f0f980fd14c70d6e307</MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce>415670741</Nonce></xml>")); err == nil {
		t.Error("a reply with a wrong MsgSignature opened")
	}
	// The JSON envelope's TimeStamp is a number, not a string.
	if _, err := docPush.OpenReply([]byte(`{"Encrypt":"ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==","MsgSignature":"1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1","TimeStamp":"1713424427","Nonce":"415670741"}`)); err == nil {
		t.Error("a JSON reply with a string TimeStamp opened")
	}
}

func TestPushSignsLikeTheDocumentation(t *testing.T) {
	p := wechattest.Push{Token: "AAAAA", Timestamp: "1714036504", Nonce: "1514711492"}
	req, err := p.URLCheck("https://www.qq.com/revice", "4375120948345356249")
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	if req.Method != "GET" || q.Get("signature") != "f464b24fc39322e44b38aa78f5edd27bd1441696" || q.Get("echostr") != "4375120948345356249" {
		t.Fatalf("URL check %s %s", req.Method, req.URL)
	}
	p = wechattest.Push{Token: "AAAAA", AESKey: strings.Repeat("A", 43), AppID: "wxba5fad812f8e6fb9", JSON: true, Safe: true, Timestamp: "1714112445", Nonce: "415670741"}
	pr, err := p.Build([]byte(`{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`))
	if err != nil {
		t.Fatal(err)
	}
	// The documented URL: signature, openid and encrypt_type as WeChat
	// sends them (msg_signature differs: the random prefix differs).
	for k, v := range map[string]string{"signature": "6c5c811b55cc85e0e1b54100749188c20beb3f5d", "openid": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "encrypt_type": "aes", "timestamp": "1714112445", "nonce": "415670741"} {
		if got := pr.Query.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
