package caddytest

// wechat_push, checked from outside as WeChat and an upstream see it:
//
//   - the console's URL check answers the echostr, and only to a good
//     signature;
//   - WeChat's published vectors (XML and JSON safe mode, compatibility
//     mode with forged plain fields) reach the upstream as exactly their
//     plaintext, with the headers a Cloud Hosting app reads;
//   - a wrong signature, another app's appid, bad padding (0, 33,
//     inconsistent), non-base64 Encrypt, a body without Encrypt, an
//     over-size body, a stale or replayed plain push: refused, nothing
//     delivered, one answer for signature and appid failures;
//   - pad values 17..32 work;
//   - WeChat's retries are delivered once; passive replies verify and
//     decrypt to the upstream's body (XML and JSON);
//   - an upstream answering 503, or down, still gets the push once it is
//     back; with the memory store across a Caddy restart (and a reload to
//     another storage before it); with Redis after
//     the acknowledging instance is SIGKILLed, and across two instances;
//   - bad config is refused naming the problem; no token or key in a
//     DEBUG log.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	pushToken = "pushTestToken0123"
	pushKey   = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
	pushPath  = "/wechat/push"
)

// pushUpstream is the upstream of deliveries: it records each request,
// answers with status (200 when 0) and reply, and can go down and come
// back on the same address.
type pushUpstream struct {
	t    *testing.T
	Addr string
	URL  string

	mu     sync.Mutex
	status int
	reply  string
	got    []pushDelivery
	srv    *http.Server
}

type pushDelivery struct {
	Header http.Header
	Body   string
	At     time.Time
}

func startPushUpstream(t *testing.T) *pushUpstream {
	t.Helper()
	u := &pushUpstream{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", multiFreePort(t))}
	u.URL = "http://" + u.Addr + "/push"
	u.Up()
	t.Cleanup(u.Down)
	return u
}

// Up serves on the upstream's address.
func (u *pushUpstream) Up() {
	u.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after Down
		if ln, err = net.Listen("tcp", u.Addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		u.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		status, reply := u.status, u.reply
		if status == 0 || status/100 == 2 {
			u.got = append(u.got, pushDelivery{Header: r.Header.Clone(), Body: string(body), At: time.Now()})
		}
		u.mu.Unlock()
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		io.WriteString(w, reply)
	})}
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
	go srv.Serve(ln)
}

// Down closes the upstream: connections are refused.
func (u *pushUpstream) Down() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (u *pushUpstream) Answer(status int, reply string) {
	u.mu.Lock()
	u.status, u.reply = status, reply
	u.mu.Unlock()
}

// Got returns the deliveries the upstream took.
func (u *pushUpstream) Got() []pushDelivery {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got)
}

// WaitFor waits up to d for n deliveries in all and returns them.
func (u *pushUpstream) WaitFor(n int, d time.Duration) []pushDelivery {
	within(d, func() bool { return len(u.Got()) >= n })
	return u.Got()
}

// pushHandler is a wechat_push block on path with lines inside.
func pushHandler(path, lines string) string {
	return fmt.Sprintf("\twechat_push %s {\n%s\n\t}\n", path, lines)
}

// pushLines are the settings of a safe-mode receiver of testAppID.
func pushLines(to, extra string) string {
	return fmt.Sprintf("\t\tapp_id %s\n\t\ttoken %s\n\t\taes_key %s\n\t\tto %s\n%s", testAppID, pushToken, pushKey, to, extra)
}

// loadPushSite loads a site on siteBase holding the handlers, answering 404
// elsewhere.
func loadPushSite(t *testing.T, global string, handlers ...string) {
	t.Helper()
	loadCaddy(t, globalOptions(global)+"\nhttp://localhost:9080 {\n"+strings.Join(handlers, "")+"\trespond 404\n}\n")
}

// safePush builds pushes for testAppID in safe mode.
func safePush(json bool) wechattest.Push {
	return wechattest.Push{Token: pushToken, AESKey: pushKey, AppID: testAppID, JSON: json, Safe: true}
}

func sendPush(t *testing.T, p wechattest.Push, target string, msg []byte) *reply {
	t.Helper()
	req, err := p.Request(target, msg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := do(req)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// As send: the connection met the previous config's listener as it
		// closed; the push never reached a handler.
		t.Logf("push: %v; trying once more on a new connection", err)
		if req, err = p.Request(target, msg); err != nil {
			t.Fatal(err)
		}
		r, err = do(req)
	}
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return r
}

func wantSuccess(t *testing.T, r *reply) {
	t.Helper()
	if r.Status != http.StatusOK || string(r.Body) != "success" {
		t.Fatalf("push answered %d %q, want 200 success", r.Status, r.Body)
	}
}

func TestPushURLCheckAnswersEchostr(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(false)
	req, err := p.URLCheck(siteBase+pushPath, "1616140317555161061")
	if err != nil {
		t.Fatal(err)
	}
	r, err := do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || string(r.Body) != "1616140317555161061" {
		t.Fatalf("URL check: %d %q, want 200 and the echostr", r.Status, r.Body)
	}
	// A signature triple seen once (an access log holds them) echoes any
	// echostr: a browser must take it as text, never sniff it into HTML.
	if ct, nosniff := r.Header.Get("Content-Type"), r.Header.Get("X-Content-Type-Options"); !strings.HasPrefix(ct, "text/plain") || nosniff != "nosniff" {
		t.Errorf("URL check answered Content-Type %q, X-Content-Type-Options %q; want text/plain and nosniff", ct, nosniff)
	}
	// Another token's signature: refused, echostr not echoed.
	p.Token = "someone-else"
	req, _ = p.URLCheck(siteBase+pushPath, "1616140317555161061")
	r, _ = do(req)
	if r.Status != http.StatusForbidden || bytes.Contains(r.Body, []byte("1616140317555161061")) {
		t.Fatalf("URL check with a bad signature: %d %q, want 403 without the echostr", r.Status, r.Body)
	}
}

// TestPushDeliversWeChatVectorsExactly posts WeChat's published pushes
// (msgcrypt's vectors) and checks the upstream gets their plaintext byte
// for byte.
func TestPushDeliversWeChatVectorsExactly(t *testing.T) {
	up := startPushUpstream(t)
	const mpKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	vectors := []struct {
		name, appid, token, key, sig, ts, nonce, body, plaintext, openid, eventID, ctype string
	}{
		{"mini program doc, JSON safe mode", "wxba5fad812f8e6fb9", "AAAAA", mpKey,
			"046e02f8204d34f8ba5fa3b1db94908f3df2e9b3", "1714112445", "415670741",
			`{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="}`,
			`{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`,
			"o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714112445:debug_demo", "application/json"},
		{"third-party platform doc, XML safe mode", "wx134c8103faa5a59e", "AAAAA", mpKey,
			"6c12a4205838198b8fa631b3220723bb07f1015c", "1715943329", "1590219412",
			"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==]]></Encrypt></xml>",
			"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>",
			"o9AgO5Kd5ggOC-bXrbNODIiE3bGY", "o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1715943329:debug_demo", "text/xml"},
		// The Official Account sample's compatibility-mode push, its plain
		// fields forged: only the decrypted copy counts.
		{"Official Account sample, compatibility mode, forged plain fields", "wx2c2769f8efd9abc2", "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
			"5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132",
			"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oFORGEDFORGEDFORGEDFORGED000]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content><MsgId>1</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>",
			"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>",
			"oyORnuP8q7ou2gfYjqLzSIWZf0rs", "6054768590064713728", "text/xml"},
	}
	var handlers []string
	for i, v := range vectors {
		handlers = append(handlers, pushHandler(fmt.Sprintf("/v%d", i),
			fmt.Sprintf("\t\tapp_id %s\n\t\ttoken %s\n\t\taes_key %s\n\t\tto %s", v.appid, v.token, v.key, up.URL)))
	}
	loadPushSite(t, "", handlers...)
	for i, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			q := url.Values{"signature": {"ignored-in-safe-mode"}, "timestamp": {v.ts}, "nonce": {v.nonce},
				"encrypt_type": {"aes"}, "msg_signature": {v.sig}, "openid": {v.openid}}
			r := send(t, http.MethodPost, fmt.Sprintf("%s/v%d?%s", siteBase, i, q.Encode()), nil, v.body)
			wantSuccess(t, r)
			got := up.WaitFor(i+1, 5*time.Second)
			if len(got) != i+1 {
				t.Fatalf("upstream got %d deliveries, want %d", len(got), i+1)
			}
			d := got[i]
			if d.Body != v.plaintext {
				t.Fatalf("upstream body:\n%q\nwant WeChat's plaintext:\n%q", d.Body, v.plaintext)
			}
			for h, want := range map[string]string{"X-Wx-Source": "wx_push", "X-Wx-Appid": v.appid,
				"X-Wx-Openid": v.openid, "X-Wx-Event-Id": v.eventID} {
				if d.Header.Get(h) != want {
					t.Errorf("%s = %q, want %q", h, d.Header.Get(h), want)
				}
			}
			if !strings.HasPrefix(d.Header.Get("Content-Type"), v.ctype) {
				t.Errorf("Content-Type %q, want %s", d.Header.Get("Content-Type"), v.ctype)
			}
		})
	}
}

// sealRaw encrypts msg for appid the way WeChat does, but pads with pad
// (the PKCS#7 bytes, whatever they say), and signs it; it returns the
// query and XML body of the push.
func sealRaw(t *testing.T, msg []byte, appid string, pad []byte) (url.Values, string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(pushKey + "=")
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 20, 20+len(msg)+len(appid)+len(pad))
	rand.Read(plain[:16])
	binary.BigEndian.PutUint32(plain[16:20], uint32(len(msg)))
	plain = append(append(append(plain, msg...), appid...), pad...)
	if len(plain)%aes.BlockSize != 0 {
		t.Fatalf("test bug: %d bytes is no whole number of AES blocks", len(plain))
	}
	block, _ := aes.NewCipher(key)
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(ct, plain)
	enc := base64.StdEncoding.EncodeToString(ct)
	return signedQuery(enc), "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
}

// signedQuery is a safe-mode push's query for enc, signed with pushToken.
func signedQuery(enc string) url.Values {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strconv.Itoa(int(time.Now().UnixNano()%1e9))
	parts := []string{pushToken, ts, nonce, enc}
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	parts = []string{pushToken, ts, nonce}
	slices.Sort(parts)
	plainSum := sha1.Sum([]byte(strings.Join(parts, "")))
	return url.Values{"signature": {hex.EncodeToString(plainSum[:])}, "timestamp": {ts}, "nonce": {nonce},
		"encrypt_type": {"aes"}, "msg_signature": {hex.EncodeToString(sum[:])}}
}

// padFor returns a pad whose length makes 20+len(msg)+len(appid)+pad a
// multiple of 32, every byte v.
func padFor(msg []byte, appid string, v byte) []byte {
	n := 32 - (20+len(msg)+len(appid))%32
	return bytes.Repeat([]byte{v}, n)
}

func TestPushRefusesWhatFailsItsChecks(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "",
		pushHandler(pushPath, pushLines(up.URL, "")),
		pushHandler("/plain", fmt.Sprintf("\t\tapp_id %s\n\t\ttoken %s\n\t\tto %s", testAppID, pushToken, up.URL)))
	p := safePush(false)
	msg := p.Text("oUSER0000000000000000000000a", "hello")

	// A wrong signature and another app's appid get one and the same answer.
	q, body := sealRaw(t, msg, testAppID, padFor(msg, testAppID, byte(len(padFor(msg, testAppID, 0)))))
	q.Set("msg_signature", strings.Repeat("0", 40))
	badSig := send(t, http.MethodPost, siteBase+pushPath+"?"+q.Encode(), nil, body)
	other := wechattest.Push{Token: pushToken, AESKey: pushKey, AppID: "wx0000000000000000", Safe: true}
	otherApp := sendPush(t, other, siteBase+pushPath, other.Text("oUSER0000000000000000000000b", "hello"))
	wantError(t, badSig, http.StatusForbidden, "push_refused")
	if otherApp.Status != badSig.Status || !bytes.Equal(otherApp.Body, badSig.Body) {
		t.Errorf("another app's push answered %d %s; a bad signature %d %s: they must be the same", otherApp.Status, otherApp.Body, badSig.Status, badSig.Body)
	}

	cases := []struct {
		name   string
		query  url.Values
		body   string
		status int
		code   string
	}{}
	add := func(name string, q url.Values, body string, status int, code string) {
		cases = append(cases, struct {
			name   string
			query  url.Values
			body   string
			status int
			code   string
		}{name, q, body, status, code})
	}
	n := len(padFor(msg, testAppID, 0))
	if n < 2 {
		t.Fatalf("test bug: a pad of %d byte cannot be inconsistent", n)
	}
	// Each bad pad but "0" is one a lenient decoder (the last byte alone
	// read, or any value up to 255) would strip to exactly the message
	// and the right appid: only the padding rule refuses it.
	msg33 := msg
	for i := 0; (20+len(msg33)+len(testAppID)+33)%aes.BlockSize != 0; i++ {
		msg33 = p.Text("oUSER0000000000000000000000a", "hello"+strings.Repeat("!", i))
	}
	inconsistent := bytes.Repeat([]byte{byte(n)}, n)
	inconsistent[0] ^= 1
	for _, bad := range []struct {
		name string
		msg  []byte
		pad  []byte
	}{
		{"pad byte 0", msg, padFor(msg, testAppID, 0)},
		{"pad byte 33", msg33, bytes.Repeat([]byte{33}, 33)},
		{"inconsistent pad bytes", msg, inconsistent},
	} {
		q, body := sealRaw(t, bad.msg, testAppID, bad.pad)
		add(bad.name, q, body, http.StatusForbidden, "push_refused")
	}
	q, _ = sealRaw(t, msg, testAppID, padFor(msg, testAppID, byte(n)))
	add("Encrypt not base64", signedQuery("not*base64!"), "<xml><Encrypt><![CDATA[not*base64!]]></Encrypt></xml>", http.StatusBadRequest, "invalid_request")
	add("no Encrypt in safe mode", q, string(msg), http.StatusForbidden, "push_refused")
	add("body neither XML nor JSON", q, "hello", http.StatusBadRequest, "invalid_request")
	add("body over 1 MiB", q, "<xml><Encrypt>"+strings.Repeat("A", 1<<20)+"</Encrypt></xml>", http.StatusRequestEntityTooLarge, "payload_too_large")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, send(t, http.MethodPost, siteBase+pushPath+"?"+c.query.Encode(), nil, c.body), c.status, c.code)
		})
	}

	t.Run("plain mode: stale, replayed", func(t *testing.T) {
		plain := wechattest.Push{Token: pushToken, AppID: testAppID}
		stale := plain
		stale.Timestamp = strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
		wantError(t, sendPush(t, stale, siteBase+"/plain", stale.Text("oUSER0000000000000000000000c", "old")), http.StatusForbidden, "push_refused")
		fresh := plain
		fresh.Timestamp, fresh.Nonce = strconv.FormatInt(time.Now().Unix(), 10), "424242"
		m := fresh.Text("oUSER0000000000000000000000d", "once")
		wantSuccess(t, sendPush(t, fresh, siteBase+"/plain", m))
		// The very same push again, once answered: a replay.
		wantError(t, sendPush(t, fresh, siteBase+"/plain", m), http.StatusForbidden, "push_refused")
		// The same (timestamp, nonce) again, even with another body.
		wantError(t, sendPush(t, fresh, siteBase+"/plain", fresh.Text("oUSER0000000000000000000000d", "twice")), http.StatusForbidden, "push_refused")
		bad := plain
		bad.Token = "wrong"
		wantError(t, sendPush(t, bad, siteBase+"/plain", bad.Text("oUSER0000000000000000000000e", "x")), http.StatusForbidden, "push_refused")
	})
	// A message that is not one <xml> element, in plain mode as in safe
	// mode once decrypted: what follows it, or another root, could name
	// another sender than the one X-WX-OPENID gives.
	t.Run("not one xml message", func(t *testing.T) {
		plain := wechattest.Push{Token: pushToken, AppID: testAppID}
		for _, body := range []string{
			"<xml><FromUserName>oA</FromUserName><MsgId>8840003</MsgId></xml><FromUserName>oB</FromUserName>",
			"<xml><FromUserName>oA</FromUserName><MsgId>8840004</MsgId></xml>trailing",
			"<xml><FromUserName>oA</FromUserName><MsgId>8840005</MsgId></xml><?pi x?>",
			"<root><FromUserName>oA</FromUserName><MsgId>8840006</MsgId></root>",
		} {
			wantError(t, sendPush(t, plain, siteBase+"/plain", []byte(body)), http.StatusBadRequest, "invalid_request")
			wantError(t, sendPush(t, safePush(false), siteBase+pushPath, []byte(body)), http.StatusBadRequest, "invalid_request")
		}
	})
	time.Sleep(300 * time.Millisecond)
	got := up.Got()
	if len(got) != 1 || !strings.Contains(got[0].Body, "once") {
		t.Fatalf("the upstream got %d deliveries; want only the one fresh plain push", len(got))
	}
}

// TestPushPadValues17To32 sends messages whose lengths make every pad
// value from 17 to 32, which a 16-byte PKCS#7 decoder refuses.
func TestPushPadValues17To32(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(false)
	base := p.Text("oUSER0000000000000000000000f", "")
	var want []string
	for pad := 17; pad <= 32; pad++ {
		var msg []byte
		for extra := 0; extra < 32; extra++ {
			msg = p.Text("oUSER0000000000000000000000f", strings.Repeat("x", extra+1))
			if 32-(20+len(msg)+len(testAppID))%32 == pad {
				break
			}
		}
		if 32-(20+len(msg)+len(testAppID))%32 != pad {
			t.Fatalf("no message length gives pad %d (base %d bytes)", pad, len(base))
		}
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, msg))
		want = append(want, string(msg))
	}
	got := up.WaitFor(len(want), 5*time.Second)
	if len(got) != len(want) {
		t.Fatalf("upstream got %d of %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Body != want[i] {
			t.Errorf("pad %d: upstream got %q, want %q", 17+i, got[i].Body, want[i])
		}
	}
}

func TestPushRetriesAreDeliveredOnce(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(true)
	one := p.Text("oUSER0000000000000000000000g", "one")
	for range 3 {
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, one))
	}
	two, three := p.Event("oUSER0000000000000000000000g", "subscribe_msg_popup_event"), p.Text("oUSER0000000000000000000000g", "three")
	for range 2 {
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, two))
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, three))
	}
	time.Sleep(300 * time.Millisecond)
	if got := up.Got(); len(got) != 3 {
		t.Fatalf("upstream got %d deliveries, want 3 (one per event)", len(got))
	}
}

// Two template messages sent to one user in one second finish in two
// TEMPLATESENDJOBFINISH events that differ only in their MsgID (WeChat's
// own samples). Both reach the upstream, each with its MsgID as
// X-WX-EVENT-ID: an upstream idempotent on that id, as docs/push.md asks,
// must not drop the second. Each is still delivered once.
func TestPushJobFinishEventsKeepTheirOwnIDs(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(false)
	job := func(id, status string) []byte {
		return []byte("<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName><CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>" + id + "</MsgID><Status><![CDATA[" + status + "]]></Status></xml>")
	}
	for range 2 {
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, job("200163836", "success")))
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, job("200163840", "failed:user block")))
	}
	time.Sleep(300 * time.Millisecond)
	got := up.Got()
	if len(got) != 2 {
		t.Fatalf("upstream got %d deliveries, want 2 (one per event)", len(got))
	}
	for i, want := range []string{"200163836", "200163840"} {
		if id := got[i].Header.Get("X-Wx-Event-Id"); id != want {
			t.Errorf("delivery %d: X-WX-EVENT-ID %q, want the event's MsgID %s", i, id, want)
		}
	}
}

func TestPushPassiveReplyIsSealedForWeChat(t *testing.T) {
	for _, json := range []bool{false, true} {
		t.Run(map[bool]string{false: "XML", true: "JSON"}[json], func(t *testing.T) {
			up := startPushUpstream(t)
			const answer = "<xml><ToUserName><![CDATA[oUSER]]></ToUserName><FromUserName><![CDATA[gh_0123456789ab]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>\n" // the newline most frameworks end a body with
			up.Answer(200, answer)
			loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
			p := safePush(json)
			p.Nonce = "987654321"
			r := sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000h", "hi"))
			if r.Status != 200 {
				t.Fatalf("answer %d %s", r.Status, r.Body)
			}
			rep, err := p.OpenReply(r.Body)
			if err != nil {
				t.Fatalf("the reply does not verify or decrypt as WeChat reads it: %v\n%s", err, r.Body)
			}
			if string(rep.Message) != answer || rep.Nonce != "987654321" {
				t.Fatalf("reply decrypts to %q with nonce %q; want the upstream's body and the push's nonce", rep.Message, rep.Nonce)
			}
			if json != bytes.HasPrefix(bytes.TrimSpace(r.Body), []byte("{")) {
				t.Fatalf("the reply's envelope is not in the push's format: %s", r.Body)
			}
		})
	}
}

func TestPushReachesAnUpstreamThatWasDownOr503(t *testing.T) {
	up := startPushUpstream(t)
	key := filepath.Join(t.TempDir(), "assert.pem")
	pub := writeAssertionKey(t, key)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "\t\tassertion\n\t\tassertion_key {file."+key+"}")))
	p := safePush(false)

	up.Answer(http.StatusServiceUnavailable, "")
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000i", "while 503")))
	up.Down()
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000i", "while down")))
	time.Sleep(2 * time.Second)
	up.Answer(0, "")
	up.Up()
	back := time.Now()
	got := up.WaitFor(2, 30*time.Second)
	if len(got) != 2 {
		t.Fatalf("the upstream got %d of 2 pushes within 30 s of coming back", len(got))
	}
	for _, d := range got {
		// A retry carries an assertion signed for it, not one from the
		// first attempt.
		claims := verifyAssertion(t, d.Header.Get("X-Wx-Assertion"), pub)
		if claims["sub"] != "oUSER0000000000000000000000i" || claims["aud"] != testAppID {
			t.Errorf("assertion claims %v", claims)
		}
		if iat, _ := claims.GetIssuedAt(); iat == nil || iat.Time.Before(back.Add(-time.Second)) {
			t.Errorf("assertion iat %v is older than the retry", iat)
		}
	}
	m := scrapeMetrics(t)
	if metricTotal(m, "caddy_wechat_auth_deliveries_total", `kind="push"`, `result="queued"`) < 2 ||
		metricTotal(m, "caddy_wechat_auth_deliveries_total", `kind="push"`, `result="delivered"`) < 2 {
		t.Errorf("deliveries_total does not count the queued and delivered pushes")
	}
}

func writeAssertionKey(t *testing.T, path string) *ecdsa.PublicKey {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

func verifyAssertion(t *testing.T, tok string, pub *ecdsa.PublicKey) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"})); err != nil {
		t.Fatalf("delivery's assertion %q does not verify: %v", tok, err)
	}
	return claims
}

func TestPushConfigErrorsNameTheProblem(t *testing.T) {
	site := func(lines string) string {
		return globalOptions("") + "\nhttp://localhost:9080 {\n" + pushHandler(pushPath, lines) + "}\n"
	}
	for _, c := range []struct{ name, lines, want string }{
		{"aes_key of 42 characters", fmt.Sprintf("\t\tapp_id %s\n\t\ttoken T\n\t\taes_key %s\n\t\tto http://127.0.0.1:1/", testAppID, pushKey[:42]), "aes_key"},
		{"no token", fmt.Sprintf("\t\tapp_id %s\n\t\tto http://127.0.0.1:1/", testAppID), "token is missing"},
		{"to not http(s)", fmt.Sprintf("\t\tapp_id %s\n\t\ttoken T\n\t\tto ftp://127.0.0.1/", testAppID), "to must be an http:// or https:// URL"},
		{"unknown line", "\t\tfrobnicate", "unknown subdirective"},
		// The app's secret in app_id's place: it would go out as X-WX-APPID.
		{"app_id of an EncodingAESKey", "\t\tapp_id " + pushKey + "\n\t\ttoken T\n\t\tto http://127.0.0.1:1/", "is not an AppID"},
		{"app_id of an AppSecret's form", "\t\tapp_id 0123456789abcdef0123456789abcdef\n\t\ttoken T\n\t\tto http://127.0.0.1:1/", "form of an AppSecret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := loadError(t, site(c.lines))
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not say %q", msg, c.want)
			}
			if strings.Contains(msg, pushKey[:32]) || strings.Contains(msg, "0123456789abcdef0123456789abcdef") {
				t.Fatalf("error shows the key: %s", msg)
			}
		})
	}
}

func TestPushLogsNoTokenOrKeyAtDebug(t *testing.T) {
	up := startPushUpstream(t)
	path, option := debugLog(t)
	t.Setenv("PUSH_TEST_TOKEN", pushToken)
	t.Setenv("PUSH_TEST_KEY", pushKey)
	loadPushSite(t, option, pushHandler(pushPath, fmt.Sprintf("\t\tapp_id %s\n\t\ttoken {env.PUSH_TEST_TOKEN}\n\t\taes_key {env.PUSH_TEST_KEY}\n\t\tto %s", testAppID, up.URL)))
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000j", "log me not")))
	up.Answer(503, "")
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000j", "queued")))
	bad := p
	bad.Token = "x"
	sendPush(t, bad, siteBase+pushPath, p.Text("oUSER0000000000000000000000j", "refused"))
	time.Sleep(500 * time.Millisecond)
	log := readFile(t, path)
	if !strings.Contains(log, `"event":"push"`) {
		t.Fatalf("no push audit entry in the DEBUG log")
	}
	for _, secret := range []string{pushToken, pushKey, "log me not"} {
		if strings.Contains(log, secret) {
			t.Errorf("the DEBUG log holds %q", secret)
		}
	}
}

// multiPushSite is a multiCaddy site with one wechat_push.
// A second one on /plain takes plain-mode pushes.
func multiPushSite(to, store string) string {
	return pushHandler(pushPath, pushLines(to, store)) +
		pushHandler("/plain", fmt.Sprintf("\t\tapp_id %s\n\t\ttoken %s\n\t\tto %s\n%s", testAppID, pushToken, to, store)) +
		"\trespond 404\n"
}

func TestPushMemoryOutboxSurvivesARestart(t *testing.T) {
	up := startPushUpstream(t)
	c := multiNew(t, "memory", "", multiPushSite(up.URL, ""))
	c.Start()
	up.Down()
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, c.Base+pushPath, p.Text("oUSER0000000000000000000000k", "kept on disk")))
	c.Stop()
	up.Up()
	c.Start()
	got := up.WaitFor(1, 30*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].Body, "kept on disk") {
		t.Fatalf("after the restart the upstream got %d pushes, want the one queued before", len(got))
	}
}

// TestPushMemoryRetryAfterARestartIsNotDeliveredAgain: with the memory
// store, WeChat's retry of a push delivered before Caddy restarted is
// answered success and not delivered again.
func TestPushMemoryRetryAfterARestartIsNotDeliveredAgain(t *testing.T) {
	up := startPushUpstream(t)
	c := multiNew(t, "memory", "", multiPushSite(up.URL, ""))
	c.Start()
	p := safePush(false)
	msg := p.Text("oUSER0000000000000000000000k", "delivered once")
	wantSuccess(t, sendPush(t, p, c.Base+pushPath, msg))
	c.Stop()
	c.Start()
	wantSuccess(t, sendPush(t, p, c.Base+pushPath, msg))
	time.Sleep(300 * time.Millisecond)
	if got := up.Got(); len(got) != 1 {
		t.Fatalf("the upstream got %d deliveries of one push across a restart, want 1", len(got))
	}
}

// TestPushMemoryPlainPairIsSeenAfterARestart: with the memory store, a
// plain-mode (timestamp, nonce) answered before Caddy restarted, by a push
// or by the console's URL check, signs no other body after it: the
// signature covers the pair alone, and the pair is still within max_age.
func TestPushMemoryPlainPairIsSeenAfterARestart(t *testing.T) {
	up := startPushUpstream(t)
	c := multiNew(t, "memory", "", multiPushSite(up.URL, ""))
	c.Start()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	pushed := wechattest.Push{Token: pushToken, AppID: testAppID, Timestamp: ts, Nonce: "8810001"}
	wantSuccess(t, sendPush(t, pushed, c.Base+"/plain", pushed.Text("oUSER0000000000000000000000r", "real")))
	checked := wechattest.Push{Token: pushToken, AppID: testAppID, Timestamp: ts, Nonce: "8810002"}
	req, err := checked.URLCheck(c.Base+"/plain", "echo")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := do(req); err != nil || r.Status != http.StatusOK || string(r.Body) != "echo" {
		t.Fatalf("URL check: %v %+v, want 200 echo", err, r)
	}
	c.Stop()
	c.Start()
	for _, p := range []wechattest.Push{pushed, checked} {
		wantError(t, sendPush(t, p, c.Base+"/plain", p.Text("oVICTIM000000000000000000000", "forged after the restart")), http.StatusForbidden, "push_refused")
	}
	time.Sleep(300 * time.Millisecond)
	if got := up.Got(); len(got) != 1 || !strings.Contains(got[0].Body, "real") {
		t.Fatalf("the upstream got %d pushes, want the real one alone", len(got))
	}
}

// kill ends a Caddy process at once (SIGKILL): no shutdown work runs.
func (m *multiCaddy) kill() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}

func TestPushRedisSharedAcrossInstances(t *testing.T) {
	rds := rdsStart(t)
	up := startPushUpstream(t)
	store := "\t\tstore redis redis://" + rds.Addr + "\n"
	c1 := multiNew(t, "one", "", multiPushSite(up.URL, store))
	// The second takes the store from the wechat app, which names no app:
	// pushes need no app secret.
	c2 := multiNew(t, "two", "\twechat {\n\t\tstore redis redis://"+rds.Addr+"\n\t}", multiPushSite(up.URL, ""))
	multiStartAll(t, c1, c2)
	p := safePush(false)

	t.Run("a push and its retry on another instance are delivered once", func(t *testing.T) {
		msg := p.Text("oUSER0000000000000000000000l", "once across instances")
		wantSuccess(t, sendPush(t, p, c1.Base+pushPath, msg))
		wantSuccess(t, sendPush(t, p, c2.Base+pushPath, msg))
		time.Sleep(300 * time.Millisecond)
		if n := len(up.Got()); n != 1 {
			t.Fatalf("upstream got %d deliveries, want 1", n)
		}
	})
	t.Run("plain-mode replay check is shared", func(t *testing.T) {
		plain := wechattest.Push{Token: pushToken, AppID: testAppID,
			Timestamp: strconv.FormatInt(time.Now().Unix(), 10), Nonce: "777"}
		first := plain.Text("oUSER0000000000000000000000n", "first")
		wantSuccess(t, sendPush(t, plain, c1.Base+"/plain", first))
		wantError(t, sendPush(t, plain, c2.Base+"/plain", plain.Text("oUSER0000000000000000000000n", "replayed")), http.StatusForbidden, "push_refused")
		// The very same push, answered on the first instance: a replay.
		wantError(t, sendPush(t, plain, c2.Base+"/plain", first), http.StatusForbidden, "push_refused")
	})
	t.Run("another instance delivers what a killed one queued", func(t *testing.T) {
		before := len(up.Got())
		up.Down()
		wantSuccess(t, sendPush(t, p, c1.Base+pushPath, p.Text("oUSER0000000000000000000000m", "survives SIGKILL")))
		c1.kill()
		up.Up()
		killed := time.Now()
		got := up.WaitFor(before+1, 60*time.Second)
		if len(got) != before+1 || !strings.Contains(got[before].Body, "survives SIGKILL") {
			t.Fatalf("no instance delivered the push queued by the killed one within 60 s")
		}
		t.Logf("delivered %v after the kill", got[before].At.Sub(killed).Round(time.Second))
	})
}

// TestPushOrdersItselfBeforeWeChatAuth: written after wechat_auth in a
// site block, wechat_push still runs first (WeChat sends no token), and
// one without a matcher shadowing wechat_auth is refused.
func TestPushOrdersItselfBeforeWeChatAuth(t *testing.T) {
	up := startPushUpstream(t)
	auth := fmt.Sprintf("\twechat_auth {\n\t\tapp_id %s\n\t\tapp_secret %s\n\t\tsigning_key %s\n\t}\n", testAppID, testSecret, testSigningKey)
	loadCaddy(t, globalOptions("")+"\nhttp://localhost:9080 {\n"+auth+pushHandler(pushPath, pushLines(up.URL, ""))+"\treverse_proxy 127.0.0.1:9\n}\n")
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000o", "before auth")))
	if got := up.WaitFor(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("upstream got %d pushes, want 1", len(got))
	}
	wantStatus(t, get(t, siteBase+"/api/x", ""), http.StatusUnauthorized)

	msg := loadError(t, globalOptions("")+"\nhttp://localhost:9080 {\n"+auth+pushHandler("", pushLines(up.URL, ""))+"}\n")
	for _, w := range []string{"wechat_push", "can never run"} {
		if !strings.Contains(msg, w) {
			t.Errorf("load error lacks %q: %s", w, msg)
		}
	}
}

// TestPushQueuedPushSurvivesAReload: the outbox and the ids it remembers
// outlive `caddy reload`, one that changes the receiver's timings too; a
// push queued before it is delivered after it, once, and WeChat's retry
// of it is still recognised.
func TestPushQueuedPushSurvivesAReload(t *testing.T) {
	up := startPushUpstream(t)
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "")))
	p := safePush(false)
	msg := p.Text("oUSER0000000000000000000000p", "across a reload")
	up.Down()
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, msg))
	loadPushSite(t, "", pushHandler(pushPath, pushLines(up.URL, "\t\ttimeout 3s\n\t\tretry_for 12h")), "\trespond /reloaded 200\n")
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, msg))
	up.Up()
	up.WaitFor(1, 30*time.Second)
	time.Sleep(time.Second) // a second delivery would come now
	if got := up.Got(); len(got) != 1 || !strings.Contains(got[0].Body, "across a reload") {
		t.Fatalf("after the reload the upstream got %d deliveries, want the queued push once", len(got))
	}
}

// TestPushQueuedPushFollowsANewTo: a reload that gives the app's receiver
// another `to` (the old upstream moved, or was a typo) sends the pushes
// queued for the old one to the new one; WeChat was told they were taken.
func TestPushQueuedPushFollowsANewTo(t *testing.T) {
	old, cur := startPushUpstream(t), startPushUpstream(t)
	old.Down()
	loadPushSite(t, "", pushHandler(pushPath, pushLines(old.URL, "")))
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000p", "to the new upstream")))
	loadPushSite(t, "", pushHandler(pushPath, pushLines(cur.URL, "")))
	cur.WaitFor(1, 15*time.Second)
	if got := cur.Got(); len(got) != 1 || !strings.Contains(got[0].Body, "to the new upstream") {
		t.Fatalf("the new upstream got %d deliveries, want the queued push once", len(got))
	}
}

// TestPushTakenDuringAReloadIsDelivered: a reload changes the receiver's
// settings (here its timeout) while a push's first delivery is still under
// way on the old config. Once that delivery fails the push is queued and
// answered success; the outbox serving the new config must still deliver
// it, without waiting for the next restart of Caddy.
func TestPushTakenDuringAReloadIsDelivered(t *testing.T) {
	gate := make(chan struct{})
	up := startHoldingUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		<-gate // the first attempt waits for the reload, then fails
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	to := up.url

	loadPushSite(t, "", pushHandler(pushPath, pushLines(to, "\t\ttimeout 4s")))
	p := safePush(false)
	msg := p.Text("oUSER0000000000000000000000r", "taken during a reload")
	answered := make(chan *reply, 1)
	go func() {
		req, err := p.Request(siteBase+pushPath, msg)
		if err != nil {
			answered <- nil
			return
		}
		r, err := do(req)
		if err != nil {
			t.Logf("push: %v", err)
		}
		answered <- r
	}()
	up.waitHeld(t)
	// Once the new config serves, its outbox has started: the old
	// config's delivery may now fail and be queued.
	go func() {
		within(10*time.Second, func() bool {
			r, err := trySend(http.MethodGet, siteBase+"/reloaded", nil, "")
			return err == nil && r.Status == http.StatusOK
		})
		time.Sleep(300 * time.Millisecond)
		close(gate)
	}()
	loadPushSite(t, "", pushHandler(pushPath, pushLines(to, "\t\ttimeout 3s")), "\trespond /reloaded 200\n")
	if r := <-answered; r == nil {
		t.Fatal("the push taken during the reload got no answer")
	} else {
		wantSuccess(t, r)
	}
	if !within(30*time.Second, func() bool { return len(up.got()) > 0 }) {
		t.Fatal("a push answered success during a reload was not delivered within 30 s")
	}
	if got := up.got(); !strings.Contains(got[0], "taken during a reload") {
		t.Fatalf("the upstream got %q", got[0])
	}
}

// TestPlainPushRetryAfterACrashIsTaken: in plain mode the replay check
// remembers a push's signature in Redis before the push is delivered.
// When the instance that took it dies during its first delivery, WeChat
// got no answer and retries the same request on another instance: those
// retries are the same push, not a replay, and it must be delivered. A body
// other than the one first seen under that signature is still refused.
func TestPlainPushRetryAfterACrashIsTaken(t *testing.T) {
	rds := rdsStart(t)
	up := startHoldingUpstream(t, func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the first delivery hangs until its instance is killed
	})
	to := up.url
	store := "\t\tstore redis redis://" + rds.Addr + "\n"
	c1 := multiNew(t, "one", "", multiPushSite(to, store))
	c2 := multiNew(t, "two", "", multiPushSite(to, store))
	multiStartAll(t, c1, c2)

	plain := wechattest.Push{Token: pushToken, AppID: testAppID,
		Timestamp: strconv.FormatInt(time.Now().Unix(), 10), Nonce: "888"}
	msg := plain.Text("oUSER0000000000000000000000s", "taken by an instance that died")
	go func() {
		req, err := plain.Request(c1.Base+"/plain", msg)
		if err == nil {
			do(req) // no answer: the instance dies
		}
	}()
	up.waitHeld(t)
	c1.kill()
	// WeChat retries 3 times in about 15 s; while the dead instance's
	// claim on the event lasts (a few seconds), a retry is answered 503.
	var r *reply
	for range 3 {
		time.Sleep(5 * time.Second)
		if r = sendPush(t, plain, c2.Base+"/plain", msg); r.Status != http.StatusServiceUnavailable {
			break
		}
	}
	wantSuccess(t, r)
	if !within(10*time.Second, func() bool { return len(up.got()) > 0 }) {
		t.Fatal("WeChat's retry of a push whose instance died was not delivered")
	}
	wantError(t, sendPush(t, plain, c2.Base+"/plain", plain.Text("oUSER0000000000000000000000s", "forged")), http.StatusForbidden, "push_refused")
	time.Sleep(300 * time.Millisecond)
	if got := up.got(); len(got) != 1 || !strings.Contains(got[0], "taken by an instance that died") {
		t.Fatalf("the upstream got %q, want the one push once", got)
	}
}

// holdingUpstream is a push upstream whose first delivery is handed to
// hold (which answers it, or not); it records the bodies of the others.
type holdingUpstream struct {
	url    string
	held   chan struct{}
	mu     sync.Mutex
	first  bool
	bodies []string
}

func startHoldingUpstream(t *testing.T, hold func(http.ResponseWriter, *http.Request)) *holdingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &holdingUpstream{url: "http://" + ln.Addr().String() + "/push", held: make(chan struct{}, 1), first: true}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		first := u.first
		u.first = false
		if !first {
			u.bodies = append(u.bodies, string(body))
		}
		u.mu.Unlock()
		if first {
			u.held <- struct{}{}
			hold(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

// waitHeld waits for the first delivery to reach the upstream.
func (u *holdingUpstream) waitHeld(t *testing.T) {
	t.Helper()
	select {
	case <-u.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery never reached the upstream")
	}
}

// got returns the bodies delivered after the first.
func (u *holdingUpstream) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...)
}

// TestPushMemoryOutboxFollowsANewStorage: after a reload that gives Caddy
// another storage, a push WeChat was told is queued is kept in the new
// one, so the restart that follows (on the new storage) delivers it.
func TestPushMemoryOutboxFollowsANewStorage(t *testing.T) {
	up := startPushUpstream(t)
	first, second := t.TempDir(), t.TempDir()
	site := multiPushSite(up.URL, "")
	c := multiNew(t, "memory", "\tstorage file_system "+first, site)
	c.Start()
	up.Down()
	moved := c.Caddyfile("\tstorage file_system "+second, site)
	if err := os.WriteFile(filepath.Join(c.dir, "Caddyfile"), []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Load(t, moved)
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, c.Base+pushPath, p.Text("oUSER0000000000000000000000k", "queued after the move")))
	c.kill()
	up.Up()
	c.Start()
	got := up.WaitFor(1, 30*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].Body, "queued after the move") {
		t.Fatalf("after the restart on the new storage the upstream got %d pushes, want the one queued there", len(got))
	}
}

// The outbox outlives a reload; its lines follow the config: with the log
// moved to another file, a push queued after the reload is logged there,
// not in the first config's file, which Caddy closed.
func TestPushOutboxLogsFollowAReload(t *testing.T) {
	up := startPushUpstream(t)
	dir := t.TempDir()
	logTo := func(name string) string {
		return "\tlog {\n\t\toutput file " + filepath.Join(dir, name) + "\n\t}"
	}
	loadPushSite(t, logTo("first.log"), pushHandler(pushPath, pushLines(up.URL, "")))
	loadPushSite(t, logTo("second.log"), pushHandler(pushPath, pushLines(up.URL, "")), "\trespond /reloaded 200\n")
	up.Down()
	p := safePush(false)
	wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000q", "after the reload")))
	const line = "upstream did not take the event"
	if !within(5*time.Second, func() bool { return strings.Contains(readFile(t, filepath.Join(dir, "second.log")), line) }) {
		t.Fatalf("the outbox's line is not in the running config's log; the first config's log holds it: %v",
			strings.Contains(readFile(t, filepath.Join(dir, "first.log")), line))
	}
	if strings.Contains(readFile(t, filepath.Join(dir, "first.log")), line) {
		t.Error("the outbox's line went to the first config's log too")
	}
}

// A reload Caddy rolls back because another app fails to start (here, a
// port already taken) started the wechat app first in some of the tries:
// the outbox's lines stay with the config that keeps running, not in the
// log of the config that was refused.
func TestPushOutboxLogsStayWithARolledBackConfig(t *testing.T) {
	up := startPushUpstream(t)
	up.Down()
	dir := t.TempDir()
	logTo := func(name string) string {
		return "\tlog {\n\t\toutput file " + filepath.Join(dir, name) + "\n\t}"
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	// Two receivers on one outbox: the config holds it once.
	handlers := pushHandler(pushPath, pushLines(up.URL, "")) + pushHandler("/push2", pushLines(up.URL, ""))
	loadPushSite(t, logTo("running.log"), handlers)
	// The same storage as the running config's, so the same outbox.
	refused := isolate(t, globalOptions(logTo("refused.log"))+"\nhttp://localhost:9080 {\n"+handlers+
		"\trespond 404\n}\n\nhttp://"+taken.Addr().String()+" {\n\trespond ok\n}\n")
	p := safePush(false)
	const tries = 8 // Caddy starts its apps in map order: each try is a coin toss
	for i := range tries {
		refusedLoad(t, "text/caddyfile", refused)
		wantSuccess(t, sendPush(t, p, siteBase+pushPath, p.Text("oUSER0000000000000000000000r", fmt.Sprintf("try %d", i))))
	}
	const line = "upstream did not take the event"
	within(5*time.Second, func() bool { return strings.Count(readFile(t, filepath.Join(dir, "running.log")), line) >= tries })
	running := strings.Count(readFile(t, filepath.Join(dir, "running.log")), line)
	gone := 0
	if b, err := os.ReadFile(filepath.Join(dir, "refused.log")); err == nil {
		gone = strings.Count(string(b), line)
	}
	if running != tries || gone != 0 {
		t.Errorf("of %d queued pushes, the running config's log holds %d lines, the refused config's %d", tries, running, gone)
	}
}
