package msgcrypt_test

// wechattest.Push and this package are written independently; each must
// read what the other writes, in every mode and format.

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/msgcrypt"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	token = "T0ken_for_push"
	key   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	appID = "wx1234567890abcdef"
)

func crypter(t *testing.T) *msgcrypt.Crypter {
	t.Helper()
	c, err := msgcrypt.New(token, key, appID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWechattestPushesOpenWithMsgcrypt(t *testing.T) {
	c := crypter(t)
	for _, mode := range []string{"plain", "compat", "safe"} {
		for _, isJSON := range []bool{false, true} {
			p := wechattest.Push{Token: token, AESKey: key, AppID: appID, JSON: isJSON, Safe: mode == "safe", Compat: mode == "compat"}
			for _, plaintext := range [][]byte{
				p.Text("oUser1", "你好 ]]> <b>&"),
				p.Event("oUser1", "debug_demo"),
				p.Event("oUser1", "wxa_media_check"),
				p.Event("oUser1", "subscribe_msg_popup_event"),
			} {
				name := mode + "/" + map[bool]string{false: "xml", true: "json"}[isJSON]
				req, err := p.Request("http://caddy.test/wechat/push", plaintext)
				if err != nil {
					t.Fatal(err)
				}
				q := req.URL.Query()
				body, _ := io.ReadAll(req.Body)
				if !c.VerifyURL(q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) {
					t.Fatalf("%s: signature does not verify", name)
				}
				if q.Get("openid") != "oUser1" {
					t.Errorf("%s: openid = %q", name, q.Get("openid"))
				}
				env, err := msgcrypt.ParseEnvelope(body)
				if err != nil {
					t.Fatalf("%s: %v\n%s", name, err, body)
				}
				if want := map[bool]msgcrypt.Format{false: msgcrypt.XML, true: msgcrypt.JSON}[isJSON]; env.Format != want {
					t.Errorf("%s: format %v", name, env.Format)
				}
				got := body
				if mode == "plain" {
					if env.Encrypt != "" || q.Get("encrypt_type") != "" {
						t.Fatalf("%s: plain push carries Encrypt", name)
					}
				} else {
					if q.Get("encrypt_type") != "aes" {
						t.Errorf("%s: encrypt_type = %q", name, q.Get("encrypt_type"))
					}
					if got, err = c.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), env.Encrypt); err != nil {
						t.Fatalf("%s: Open: %v\n%s", name, err, body)
					}
				}
				if !bytes.Equal(got, plaintext) {
					t.Fatalf("%s: got %q, want %q", name, got, plaintext)
				}
				if mode == "safe" && bytes.Contains(body, []byte("oUser1")) {
					t.Errorf("%s: the safe-mode body shows the sender: %s", name, body)
				}
				ev, _, err := msgcrypt.ParseEvent(got)
				if err != nil || ev.FromUserName != "oUser1" || ev.ID() == "" {
					t.Fatalf("%s: event %+v, %v", name, ev, err)
				}
				if strings.Contains(string(plaintext), `"MsgType":"text"`) || strings.Contains(string(plaintext), "[text]") {
					if len(ev.MsgID) != 19 || ev.ID() != ev.MsgID {
						t.Errorf("%s: MsgId %q, ID %q", name, ev.MsgID, ev.ID())
					}
				}
			}
		}
	}
}

func TestWechattestURLCheckVerifiesWithMsgcrypt(t *testing.T) {
	req, err := wechattest.Push{Token: token}.URLCheck("http://caddy.test/wechat/push?x=1", "4375120948345356249")
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	if !crypter(t).VerifyURL(q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) || q.Get("x") != "1" {
		t.Fatalf("URL check %s does not verify", req.URL)
	}
}

func TestMsgcryptRepliesOpenWithWechattest(t *testing.T) {
	c := crypter(t)
	for _, f := range []msgcrypt.Format{msgcrypt.XML, msgcrypt.JSON} {
		p := wechattest.Push{Token: token, AESKey: key, AppID: appID, JSON: f == msgcrypt.JSON}
		reply := []byte("<xml><ToUserName><![CDATA[oUser1]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到]]></Content></xml>")
		body, err := c.Seal(reply, "1713424427", "415670741", f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.OpenReply(body)
		if err != nil || !bytes.Equal(r.Message, reply) || r.Nonce != "415670741" || r.TimeStamp != "1713424427" {
			t.Fatalf("%v: %+v, %v\n%s", f, r, err, body)
		}
		other := p
		other.AppID = "wx0000000000000000"
		if _, err := other.OpenReply(body); err == nil {
			t.Fatalf("%v: reply opened for another appid", f)
		}
	}
}

// Both directions over every pad value.
func TestRawCiphertextBothWays(t *testing.T) {
	c := crypter(t)
	p := wechattest.Push{Token: token, AESKey: key, AppID: appID}
	for n := range 64 {
		msg := []byte(strings.Repeat("é", n/2) + strings.Repeat("x", n%2))
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Decrypt(enc); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: wechattest read msgcrypt's as %q, %v", len(msg), got, err)
		}
		enc, err = p.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Decrypt(enc); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: msgcrypt read wechattest's as %q, %v", len(msg), got, err)
		}
	}
}
