package msgcrypt

// WeChat's own published vectors, and those of the SDKs that port its
// WXBizMsgCrypt samples. Every one must verify and decrypt to exactly the
// bytes below; the encryption vectors, whose random prefix is published,
// must encrypt to exactly the published ciphertext.
//
// Sources (repository and path, or documentation URL):
//   [mp-doc]  https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html
//             (mini program 消息推送: URL check, plain push, JSON safe-mode push and reply)
//   [tpp-doc] https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/message_push.html
//             (third-party platform 消息推送: XML safe-mode push and reply)
//   [oa-py]   charlesXu86/Chatbot_CN Chatbot_Web/impl/weixin/Sample.py, a copy of the
//             Official Account WXBizMsgCrypt Python sample (cryptoDemo.zip, jonyqin 2014):
//             a compatibility-mode push, plain fields beside Encrypt
//   [wecom-go] workweixin/weworkapi_golang json_callback/sample.go (the QDG6eK sample:
//             URL check echostr, JSON push); the same token/key/XML push is in the C#
//             and Java samples' Sample files and in WeCom's 加解密方案 documentation
//   [wecom-py] sbzhu/weworkapi_python callback/Sample.py (WeCom's Python sample)
//   [wxjava]  binarywang/WxJava weixin-java-common/src/test/java/me/chanjar/weixin/common/util/crypto/WxCryptUtilTest.java
//             (the official Java sample's WXBizMsgCryptTest vectors, random "aaaabbbbccccdddd")
//   [wechatpy] wechatpy/wechatpy tests/test_crypto.py (random "1234567890123456")
//
// WeCom's vectors use the same scheme with a corpid where an appid trails.

import (
	"bytes"
	"encoding/json"
	"testing"
)

const (
	mpToken = "AAAAA"
	mpKey   = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	mpAppID = "wxba5fad812f8e6fb9"
)

type pushVector struct {
	name                           string
	token, key, appID              string
	msgSignature, timestamp, nonce string
	encrypt                        string
	plaintext                      string
}

var pushVectors = []pushVector{
	{
		name:  "mp-doc JSON safe mode debug_demo",
		token: mpToken, key: mpKey, appID: mpAppID,
		msgSignature: "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3", timestamp: "1714112445", nonce: "415670741",
		encrypt:   "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=",
		plaintext: `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`,
	},
	{
		name:  "tpp-doc XML safe mode debug_demo",
		token: "AAAAA", key: mpKey, appID: "wx134c8103faa5a59e",
		msgSignature: "6c12a4205838198b8fa631b3220723bb07f1015c", timestamp: "1715943329", nonce: "1590219412",
		encrypt:   "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==",
		plaintext: "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>",
	},
	{
		name:  "oa-py compatibility mode text",
		token: "spamtest", key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appID: "wx2c2769f8efd9abc2",
		msgSignature: "5d197aaffba7e9b25a30732f161a50dee96bd5fa", timestamp: "1409735669", nonce: "1320562132",
		encrypt:   "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=",
		plaintext: "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>",
	},
	{
		name:  "wecom-go QDG6eK URL check echostr",
		token: "QDG6eK", key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", appID: "wx5823bf96d3bd56c7",
		msgSignature: "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", timestamp: "1409659589", nonce: "263014780",
		encrypt:   "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
		plaintext: "1616140317555161061",
	},
	{
		name:  "wecom-go QDG6eK XML push",
		token: "QDG6eK", key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", appID: "wx5823bf96d3bd56c7",
		msgSignature: "477715d11cdb4164915debcba66cb864d751f3e6", timestamp: "1409659813", nonce: "1372623149",
		encrypt:   "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==",
		plaintext: "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>",
	},
	{
		name:  "wecom-go QDG6eK JSON push",
		token: "QDG6eK", key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", appID: "wx5823bf96d3bd56c7",
		msgSignature: "0623cbc5a8cbee5bcc137c70de99575366fc2af3", timestamp: "1409659813", nonce: "1372623149",
		encrypt:   "CZWs4CWRpI4VolQlvn4dlEC1alN2MUEY2VklGehgBVLBrlVF7SyT+SV+Toj43l4ayJ9UMGKphktKKmP7B2j/P1ey67XB8PBgS7Wr5/8+w/yWriZv3Vmoo/MH3/1HsIWZrPQ3N2mJrelStIfI2Y8kLKXA7EhfZgZX4o+ffdkZDM76SEl79Ib9mw7TGjZ9Aw/x/A2VjNbV1E8BtEbRxYYcQippYNw7hr8sFfa3nW1xLdxokt8QkRX83vK3DFP2F6TQFPL2Tu98UwhcUpPvdJBuu1/yiOQIScppV3eOuLWEsko=",
		plaintext: `{"ToUserName":"wx5823bf96d3bd56c7","FromUserName":"mycreate","CreateTime": 1409659813,"MsgType":"text","Content":"hello","MsgId":4561255354251345929,"AgentID": 218}`,
	},
	{
		name:  "wecom-py URL check echostr",
		token: "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", appID: "ww1436e0e65a779aee",
		msgSignature: "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", timestamp: "1476416373", nonce: "47744683",
		encrypt:   "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
		plaintext: "1288432023552776189",
	},
	{
		name:  "wecom-py XML push (UTF-8 content)",
		token: "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", key: "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", appID: "ww1436e0e65a779aee",
		msgSignature: "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", timestamp: "1476422779", nonce: "1597212914",
		encrypt:   "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+",
		plaintext: "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>",
	},
	{
		name:  "wechatpy URL check echostr",
		token: "123456", key: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", appID: "wx49f0ab532d5d035a",
		msgSignature: "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", timestamp: "1411443780", nonce: "437374425",
		encrypt:   "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
		plaintext: "5927782489442352469",
	},
	{
		name:  "wechatpy XML push",
		token: "123456", key: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", appID: "wx49f0ab532d5d035a",
		msgSignature: "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", timestamp: "1411525903", nonce: "461056294",
		encrypt:   "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
		plaintext: "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<FromUserName><![CDATA[messense]]></FromUserName>\n<CreateTime>1411525903</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<MsgId>4363689963896700987</MsgId>\n<AgentID>1</AgentID>\n</xml>",
	},
}

func mustNew(t testing.TB, token, key, appID string) *Crypter {
	t.Helper()
	c, err := New(token, key, appID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPublishedPushesVerifyAndDecryptExactly(t *testing.T) {
	for _, v := range pushVectors {
		t.Run(v.name, func(t *testing.T) {
			c := mustNew(t, v.token, v.key, v.appID)
			got, err := c.Open(v.msgSignature, v.timestamp, v.nonce, v.encrypt)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, []byte(v.plaintext)) {
				t.Fatalf("plaintext\n got %q\nwant %q", got, v.plaintext)
			}
			// The same push for another app is refused, as is a signature
			// off by one character.
			other := mustNew(t, v.token, v.key, "wx0000000000000000")
			if _, err := other.Open(v.msgSignature, v.timestamp, v.nonce, v.encrypt); err != ErrUnauthentic {
				t.Errorf("another appid: err = %v, want ErrUnauthentic", err)
			}
			if _, err := c.Open(v.msgSignature, v.timestamp, v.nonce+"1", v.encrypt); err != ErrUnauthentic {
				t.Errorf("other nonce: err = %v, want ErrUnauthentic", err)
			}
		})
	}
}

// The URL check and the plain-mode push of [mp-doc]: signature over token,
// timestamp and nonce only.
func TestPublishedURLSignatures(t *testing.T) {
	c := mustNew(t, mpToken, mpKey, mpAppID)
	for _, v := range []struct{ name, sig, ts, nonce string }{
		{"URL check", "f464b24fc39322e44b38aa78f5edd27bd1441696", "1714036504", "1514711492"},
		{"plain push", "899cf89e464efb63f54ddac96b0a0a235f53aa78", "1714037059", "486452656"},
		{"safe push signature", "6c5c811b55cc85e0e1b54100749188c20beb3f5d", "1714112445", "415670741"},
		{"tpp safe push signature", "cc0c594499c1634947d5b502f158ee518947db27", "1715943329", "1590219412"},
	} {
		if !c.VerifyURL(v.sig, v.ts, v.nonce) {
			t.Errorf("%s: signature %s does not verify", v.name, v.sig)
		}
		if c.VerifyURL(v.sig, v.ts, v.nonce+"0") {
			t.Errorf("%s: verifies with another nonce", v.name)
		}
	}
}

// Replies whose random prefix is published encrypt to exactly the
// published ciphertext and signature.
func TestPublishedRepliesEncryptExactly(t *testing.T) {
	for _, v := range []struct {
		name, token, key, appID, random, msg, timestamp, nonce, encrypt, signature string
	}{
		{
			name: "mp-doc JSON reply", token: mpToken, key: mpKey, appID: mpAppID,
			random: "707722b803182950", msg: `{"demo_resp":"good luck"}`, timestamp: "1713424427", nonce: "415670741",
			encrypt:   "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==",
			signature: "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
		},
		{
			name: "tpp-doc XML reply", token: "AAAAA", key: mpKey, appID: "wx134c8103faa5a59e",
			random: "999951349e8ee746", msg: `<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>`, timestamp: "1713424427", nonce: "415670741",
			encrypt:   "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7",
			signature: "03e0812039325c2712ef5f0f980fd14c70d6e307",
		},
		{
			name: "wxjava replyMsg", token: "pamtest", key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appID: "wxb11529c136998cb6",
			random: "aaaabbbbccccdddd", msg: "我是中文abcd123",
			encrypt: "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==",
		},
		{
			name: "wxjava replyMsg2", token: "pamtest", key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appID: "wxb11529c136998cb6",
			random:  "aaaabbbbccccdddd",
			msg:     "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>",
			encrypt: "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb",
		},
		{
			name: "wechatpy encrypt_message", token: "123456", key: "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", appID: "wx49f0ab532d5d035a",
			random: "1234567890123456", timestamp: "1411525903", nonce: "461056294",
			msg:       "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>",
			encrypt:   "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3",
			signature: "407518b7649e86ef23978113f92d27afa9296533",
		},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := mustNew(t, v.token, v.key, v.appID)
			var random [16]byte
			copy(random[:], v.random)
			enc, err := c.encrypt(random, []byte(v.msg))
			if err != nil {
				t.Fatal(err)
			}
			if enc != v.encrypt {
				t.Fatalf("Encrypt\n got %s\nwant %s", enc, v.encrypt)
			}
			if got, err := c.Decrypt(enc); err != nil || string(got) != v.msg {
				t.Fatalf("Decrypt = %q, %v", got, err)
			}
			if v.signature == "" {
				return
			}
			if got := Signature(v.token, v.timestamp, v.nonce, enc); got != v.signature {
				t.Fatalf("MsgSignature = %s, want %s", got, v.signature)
			}
		})
	}
}

// The reply envelope of [mp-doc] and [tpp-doc]: the published final
// answers parse back to the same fields our envelope writes.
func TestReplyEnvelopeMatchesPublishedShape(t *testing.T) {
	enc := "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
	got, err := envelope(enc, "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1", "1713424427", "415670741", JSON)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Encrypt":"ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==","MsgSignature":"1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1","TimeStamp":1713424427,"Nonce":"415670741"}`
	if string(got) != want {
		t.Fatalf("JSON envelope\n got %s\nwant %s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["TimeStamp"].(float64); !ok {
		t.Errorf("TimeStamp is %T, want a JSON number", m["TimeStamp"])
	}
	if _, ok := m["Nonce"].(string); !ok {
		t.Errorf("Nonce is %T, want a JSON string", m["Nonce"])
	}

	enc = "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
	got, err = envelope(enc, "03e0812039325c2712ef5f0f980fd14c70d6e307", "1713424427", "415670741", XML)
	if err != nil {
		t.Fatal(err)
	}
	// [tpp-doc]'s final answer, without its line breaks.
	want = "<xml><Encrypt><![CDATA[" + enc + "]]></Encrypt><MsgSignature><![CDATA[03e0812039325c2712ef5f0f980fd14c70d6e307]]></MsgSignature><TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>"
	if string(got) != want {
		t.Fatalf("XML envelope\n got %s\nwant %s", got, want)
	}
}
