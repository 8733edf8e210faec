package caddytest

// Acceptance points of issue 13 (the wechat_api gateway) covered here,
// through a real Caddy against the fake WeChat:
//   - a subscribe message and a QR code (bytes exact) through the gateway,
//     with the caller's access_token replaced by the app's;
//   - a token invalidated at WeChat is recovered with one refetch and one
//     resend; a POST whose connection dropped is not resent (503), a GET is;
//   - paths not allowed and the token endpoints are refused without
//     reaching WeChat;
//   - from_appid and X-WX-APPID pick among several apps; none is 400;
//   - checksession, resetusersessionkey and user_signature act with the
//     user's stored key, the reset key is used by later decryption, and
//     after logout they answer 404 no_session;
//   - 413 over max_body; the token in no answer and no DEBUG log line; the
//     metric and the audit entry.

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	gwAppB    = "wxgatewayappb0002"
	gwSecretB = "app-secret-of-the-second-app-8c1e"
)

// gwConfig describes a gateway stack.
type gwConfig struct {
	Apps    []testApp // default: testAppID
	Allow   string    // the allow line's arguments
	Gateway string    // more lines in the wechat_api block
	Global  string
}

// gwStack is wechat_auth on siteBase and wechat_api on siteBase2, both in
// front of one fake WeChat.
type gwStack struct {
	*stack
	GW string
}

func startGateway(t *testing.T, cfg gwConfig) *gwStack {
	t.Helper()
	st := startStack(t, stackConfig{Apps: cfg.Apps, Global: cfg.Global, Sites: func(st *stack) string {
		apps := cfg.Apps
		if len(apps) == 0 {
			apps = []testApp{{testAppID, testSecret}}
		}
		var gw strings.Builder
		for _, a := range apps {
			fmt.Fprintf(&gw, "\t\tapp %s %s\n", a.ID, a.Secret)
		}
		fmt.Fprintf(&gw, "\t\tapi_base %s\n\t\ttimeout %s\n\t\tallow %s\n%s", st.WeChatURL, testTimeout, cfg.Allow, cfg.Gateway)
		return fmt.Sprintf("\n%s {\n\twechat_api {\n%s\n\t}\n}\n", siteBase2, gw.String())
	}})
	return &gwStack{stack: st, GW: siteBase2}
}

// call sends one request to the gateway.
func (g *gwStack) call(t *testing.T, method, pathQuery string, header http.Header, body string) *reply {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	if body != "" && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/json")
	}
	return send(t, method, g.GW+pathQuery, header, body)
}

const gwMessage = `{"touser":"oUser00000000000000000000001","template_id":"tmpl-1","data":{"thing1":{"value":"Your order shipped"}}}`

func wantWeChatOK(t *testing.T, r *reply) map[string]any {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	m := r.Object(t)
	if code, _ := m["errcode"].(float64); code != 0 {
		t.Fatalf("WeChat answered errcode %v: %s", m["errcode"], r.Body)
	}
	return m
}

func TestGatewaySendsASubscribeMessageWithTheAppsToken(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend})
	r := g.call(t, "POST", wechattest.PathSubscribeSend+"?access_token=caller-token&lang=zh_CN", nil, gwMessage)
	m := wantWeChatOK(t, r)
	if m["msgid"] == nil {
		t.Errorf("answer without msgid: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q, want WeChat's application/json; charset=UTF-8", ct)
	}
	msgs := g.WeChat.Messages()
	if len(msgs) != 1 || msgs[0].ToUser != "oUser00000000000000000000001" || msgs[0].Data["thing1"]["value"] != "Your order shipped" || msgs[0].AppID != testAppID {
		t.Fatalf("WeChat got messages %+v", msgs)
	}
	if got := g.WeChat.LastBody(wechattest.PathSubscribeSend); string(got) != gwMessage {
		t.Errorf("WeChat got body %q, want the caller's exactly", got)
	}
	q, _ := url.ParseQuery(g.WeChat.LastQuery(wechattest.PathSubscribeSend))
	if tok := q["access_token"]; len(tok) != 1 || tok[0] != g.WeChat.AccessToken(testAppID) {
		t.Errorf("WeChat got access_token %q, want only the app's", tok)
	}
	if q.Get("lang") != "zh_CN" {
		t.Errorf("the rest of the query was lost: %v", q)
	}
	// WeChat's own answer to a bad message comes back as it is.
	r = g.call(t, "POST", wechattest.PathSubscribeSend, nil, `{"touser":"oUser00000000000000000000001"}`)
	wantStatus(t, r, http.StatusOK)
	if code := r.Object(t)["errcode"]; code != float64(wechattest.ErrArgument) {
		t.Errorf("errcode %v, want WeChat's %d", code, wechattest.ErrArgument)
	}
}

func TestGatewayReturnsTheQRCodeImageExactly(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathQRCode + " " + wechattest.PathMsgSecCheck})
	r := g.call(t, "POST", wechattest.PathQRCode, nil, `{"scene":"order=42","page":"pages/index/index"}`)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type %q, want image/png", ct)
	}
	if want := wechattest.QRCode("order=42"); !bytes.Equal(r.Body, want) {
		t.Fatalf("QR code of %d bytes, want WeChat's %d bytes exactly", len(r.Body), len(want))
	}
	r = g.call(t, "POST", wechattest.PathMsgSecCheck, nil, `{"content":"hello","version":2,"scene":2,"openid":"oUser00000000000000000000001"}`)
	if res, _ := wantWeChatOK(t, r)["result"].(map[string]any); res["suggest"] != "pass" {
		t.Errorf("msg_sec_check answer %s", r.Body)
	}
}

func TestGatewayRecoversAnInvalidatedTokenWithOneRefetch(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend})
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	first := g.WeChat.AccessToken(testAppID)
	g.WeChat.InvalidateAccessToken(testAppID)

	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	if n := g.WeChat.Calls(wechattest.PathStableToken); n != 2 {
		t.Errorf("%d stable_token calls, want 2 (one fetch, one refetch)", n)
	}
	if n := g.WeChat.Calls(wechattest.PathSubscribeSend); n != 3 {
		t.Errorf("%d calls of subscribe/send, want 3 (one, then one refused and one resent)", n)
	}
	if n := g.WeChat.ForcedRefreshes(); n != 0 {
		t.Errorf("%d forced refreshes, want 0", n)
	}
	if len(g.WeChat.Messages()) != 2 {
		t.Errorf("%d messages sent, want 2", len(g.WeChat.Messages()))
	}
	if g.WeChat.AccessToken(testAppID) == first {
		t.Error("the fake did not issue a new token")
	}
	// A token expired at WeChat (42001) the same.
	g.WeChat.ExpireAccessToken(testAppID)
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	if n := g.WeChat.Calls(wechattest.PathStableToken); n != 3 {
		t.Errorf("%d stable_token calls after an expiry, want 3", n)
	}
}

func TestGatewaySendsAPostOnceAfterATransportFailure(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend + " " + wechattest.PathQRCode + " /wxa/getpaidunionid"})
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage)) // token fetched
	g.WeChat.DropNext(wechattest.PathSubscribeSend)
	r := g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage)
	wantError(t, r, http.StatusServiceUnavailable, "wechat_unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if n := g.WeChat.Calls(wechattest.PathSubscribeSend); n != 2 {
		t.Errorf("%d calls of subscribe/send, want 2: a POST that may have sent a message is not resent", n)
	}
	// A GET is sent again.
	g.WeChat.DropNext("/wxa/getpaidunionid")
	r = g.call(t, "GET", "/wxa/getpaidunionid?openid=oUser00000000000000000000001", nil, "")
	wantStatus(t, r, http.StatusNotFound) // the fake does not serve it: its 404 comes back
	if n := g.WeChat.Calls("/wxa/getpaidunionid"); n != 2 {
		t.Errorf("%d calls of a GET after a dropped connection, want 2", n)
	}
}

func TestGatewayRefusesPathsNotAllowedAndTokenEndpoints(t *testing.T) {
	for _, allow := range []string{wechattest.PathSubscribeSend, "*"} {
		t.Run("allow "+allow, func(t *testing.T) {
			g := startGateway(t, gwConfig{Allow: allow})
			paths := []string{"/cgi-bin/token?grant_type=client_credential", "/cgi-bin/stable_token", "/cgi-bin/stable_token/", "/CGI-BIN/TOKEN", "/cgi-bin/%74oken", "/wxa/../cgi-bin/token", "//cgi-bin//stable_token"}
			if allow != "*" {
				paths = append(paths, wechattest.PathQRCode, "/", wechattest.PathSubscribeSend+"/")
			}
			for _, p := range paths {
				for _, m := range []string{"GET", "POST"} {
					r := g.call(t, m, p, nil, `{"grant_type":"client_credential"}`)
					wantError(t, r, http.StatusForbidden, "api_not_allowed")
				}
			}
			for _, p := range []string{wechattest.PathToken, wechattest.PathStableToken, wechattest.PathQRCode} {
				if n := g.WeChat.Calls(p); n != 0 {
					t.Errorf("%s reached WeChat %d times", p, n)
				}
			}
		})
	}
	if msg := loadError(t, globalOptions("")+"http://localhost:9081 {\n\twechat_api {\n\t\tsandbox\n\t\tallow /cgi-bin/stable_token\n\t}\n}\n"); !strings.Contains(msg, "never forwarded") {
		t.Errorf("allow /cgi-bin/stable_token loaded or said: %s", msg)
	}
	if msg := loadError(t, globalOptions("")+"http://localhost:9081 {\n\twechat_api {\n\t\tsandbox\n\t}\n}\n"); !strings.Contains(msg, "allow") {
		t.Errorf("a gateway without allow loaded or said: %s", msg)
	}
}

func TestGatewayPicksTheAppAmongSeveral(t *testing.T) {
	g := startGateway(t, gwConfig{Apps: []testApp{{testAppID, testSecret}, {gwAppB, gwSecretB}}, Allow: wechattest.PathSubscribeSend})
	lastApp := func() string {
		msgs := g.WeChat.Messages()
		return msgs[len(msgs)-1].AppID
	}
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend+"?from_appid="+gwAppB, nil, gwMessage))
	if lastApp() != gwAppB {
		t.Errorf("from_appid=%s sent as %s", gwAppB, lastApp())
	}
	if q := g.WeChat.LastQuery(wechattest.PathSubscribeSend); strings.Contains(q, "from_appid") {
		t.Errorf("from_appid reached WeChat: %s", q)
	}
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"X-Wx-Appid": {testAppID}}, gwMessage))
	if lastApp() != testAppID {
		t.Errorf("X-WX-APPID %s sent as %s", testAppID, lastApp())
	}
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend+"?from_appid="+gwAppB, http.Header{"X-Wx-Appid": {testAppID}}, gwMessage))
	if lastApp() != gwAppB {
		t.Errorf("from_appid and X-WX-APPID: sent as %s, want from_appid's", lastApp())
	}
	wantError(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage), http.StatusBadRequest, "invalid_request")
	wantError(t, g.call(t, "POST", wechattest.PathSubscribeSend+"?from_appid=wxunknown", nil, gwMessage), http.StatusBadRequest, "invalid_request")
	wantError(t, g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"X-Wx-Appid": {"wxunknown"}}, gwMessage), http.StatusBadRequest, "invalid_request")
	// Two apps named: neither is picked, as with from_appid twice.
	if r := g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"X-Wx-Appid": {gwAppB, testAppID}}, gwMessage); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "given twice") {
		t.Errorf("X-WX-APPID given twice: %d %s", r.Status, r.Body)
	}
	if n := len(g.WeChat.Messages()); n != 3 {
		t.Errorf("%d messages sent, want 3", n)
	}
}

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

const gwSessionAllow = "/wxa/checksession /wxa/resetusersessionkey /wechat_auth/user_signature"

const gwSignData = `{"offerId":"123","buyQuantity":1,"env":0,"currencyType":"CNY","productId":"p1","goodsPrice":100,"outTradeNo":"t-1","attach":""}`

// testSessionKeyServices checks the session-key services of gateway gw
// for a user logged in at auth (on the same Redis when not one process).
func testSessionKeyServices(t *testing.T, fake *wechattest.Server, auth, gw string, lr loginResult, openid string) {
	t.Helper()
	key, _ := fake.SessionKey(openid)
	q := "?openid=" + openid
	r := send(t, "GET", gw+"/wxa/checksession"+q+"&signature=forged", nil, "")
	wantWeChatOK(t, r) // the fake checked the signature made with the stored key

	r = send(t, "POST", gw+"/wechat_auth/user_signature"+q, http.Header{"Content-Type": {"text/plain"}}, gwSignData)
	wantStatus(t, r, http.StatusOK)
	if m := r.Object(t); m["signature"] != hmacHex(key, gwSignData) || m["sig_method"] != "hmac_sha256" {
		t.Fatalf("user signature %s, want hmac_sha256 with the stored key", r.Body)
	}

	r = send(t, "GET", gw+"/wxa/resetusersessionkey"+q, nil, "")
	m := wantWeChatOK(t, r)
	if _, ok := m["session_key"]; ok || bytes.Contains(r.Body, []byte("session_key")) {
		t.Fatalf("the new session_key reached the caller: %s", r.Body)
	}
	if m["openid"] != openid {
		t.Errorf("reset answer %s", r.Body)
	}
	newKey, _ := fake.SessionKey(openid)
	if newKey == key {
		t.Fatal("the fake did not rotate the key")
	}
	r = send(t, "POST", gw+"/wechat_auth/user_signature"+q, nil, gwSignData)
	if m := r.Object(t); m["signature"] != hmacHex(newKey, gwSignData) {
		t.Fatalf("after a reset the user signature is not made with the new key: %s", r.Body)
	}
	wantWeChatOK(t, send(t, "GET", gw+"/wxa/checksession"+q, nil, ""))
	// wechat_auth decrypts with the new key too (on another instance once
	// the news reached it, within a second).
	enc, iv := encryptFor(t, newKey, map[string]any{"stepInfoList": []any{}, "watermark": map[string]any{"appid": testAppID, "timestamp": 1}})
	if !within(time.Second, func() bool {
		r = postJSON(t, auth+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": enc, "iv": iv})
		return r.Status == http.StatusOK
	}) {
		t.Fatalf("data encrypted with the reset key does not decrypt: %d %s", r.Status, r.Body)
	}

	wantStatus(t, postJSON(t, auth+"/wx/logout", lr.Token, nil), http.StatusNoContent)
	wantError(t, send(t, "GET", gw+"/wxa/checksession"+q, nil, ""), http.StatusNotFound, "no_session")
	wantError(t, send(t, "GET", gw+"/wxa/resetusersessionkey"+q, nil, ""), http.StatusNotFound, "no_session")
	wantError(t, send(t, "POST", gw+"/wechat_auth/user_signature"+q, nil, gwSignData), http.StatusNotFound, "no_session")
}

func TestGatewaySessionKeyServicesUseTheStoredKey(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: gwSessionAllow})
	u := g.addUser("gw-session")
	lr := g.login(t, "gw-session")
	calls := g.WeChat.Calls(wechattest.PathCheckSession)
	wantError(t, g.call(t, "GET", "/wxa/checksession?openid="+randomOpenID(), nil, ""), http.StatusNotFound, "no_session")
	wantError(t, g.call(t, "GET", "/wxa/checksession", nil, ""), http.StatusBadRequest, "invalid_request")
	wantError(t, g.call(t, "GET", "/wxa/checksession?openid=o%0D%0Abad", nil, ""), http.StatusBadRequest, "invalid_request")
	if n := g.WeChat.Calls(wechattest.PathCheckSession); n != calls {
		t.Errorf("checksession without a session reached WeChat")
	}
	testSessionKeyServices(t, g.WeChat, g.Base, g.GW, lr, u.OpenID)
}

// The newest login is the one the services act on; logging it out falls
// back to the one before.
func TestGatewayActsOnTheNewestLiveSession(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: gwSessionAllow})
	u := g.addUser("gw-first")
	first := g.login(t, "gw-first")
	g.WeChat.AddCode(testAppID, "gw-second", wechattest.User{OpenID: u.OpenID, SessionKey: wechattest.NewSessionKey()})
	second := g.login(t, "gw-second")
	key2, _ := g.WeChat.SessionKey(u.OpenID)
	sig := func() any {
		return g.call(t, "POST", "/wechat_auth/user_signature?openid="+u.OpenID, nil, "x").Object(t)["signature"]
	}
	if got := sig(); got != hmacHex(key2, "x") {
		t.Fatalf("signature %v is not made with the newest session's key", got)
	}
	wantStatus(t, postJSON(t, g.Base+"/wx/logout", second.Token, nil), http.StatusNoContent)
	if got := sig(); got != hmacHex(u.SessionKey, "x") {
		t.Fatalf("after logging out the newest session, signature %v is not the first session's", got)
	}
	wantStatus(t, postJSON(t, g.Base+"/wx/logout", first.Token, nil), http.StatusNoContent)
	wantError(t, g.call(t, "POST", "/wechat_auth/user_signature?openid="+u.OpenID, nil, "x"), http.StatusNotFound, "no_session")
}

func TestGatewayRefusesAResetKeyThatIsNotOne(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: gwSessionAllow})
	u := g.addUser("gw-bad-reset")
	g.login(t, "gw-bad-reset")
	for _, body := range []string{
		`{"errcode":0,"errmsg":"ok","openid":"` + u.OpenID + `","session_key":"short"}`,
		`{"errcode":0,"errmsg":"ok","openid":"oSomeoneElse000000000000001","session_key":"` + wechattest.NewSessionKey() + `"}`,
		`{"errcode":0,"errmsg":"ok"}`,
	} {
		g.WeChat.FailNextHTTP(wechattest.PathResetSessionKey, http.StatusOK, body)
		wantError(t, g.call(t, "GET", "/wxa/resetusersessionkey?openid="+u.OpenID, nil, ""), http.StatusServiceUnavailable, "wechat_unavailable")
	}
	// The stored key is unchanged.
	r := g.call(t, "POST", "/wechat_auth/user_signature?openid="+u.OpenID, nil, "x")
	if r.Object(t)["signature"] != hmacHex(u.SessionKey, "x") {
		t.Fatalf("a refused reset changed the stored key: %s", r.Body)
	}
}

func TestGatewayRefusesBodiesOverMaxBody(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend, Gateway: "\t\tmax_body 1KiB\n"})
	big := `{"touser":"o1","template_id":"t","data":{"a":{"value":"` + strings.Repeat("x", 2000) + `"}}}`
	wantError(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, big), http.StatusRequestEntityTooLarge, "payload_too_large")
	wantError(t, sendChunked(t, g.GW+wechattest.PathSubscribeSend, http.Header{"Content-Type": {"application/json"}}, big), http.StatusRequestEntityTooLarge, "payload_too_large")
	if n := g.WeChat.Calls(wechattest.PathSubscribeSend); n != 0 {
		t.Errorf("an oversized body reached WeChat %d times", n)
	}
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
}

// A compressed body is refused, not sent on: WeChat takes plain bodies,
// and the gateway forwards no Content-Encoding.
func TestGatewayRefusesCompressedBodies(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(gwMessage))
	zw.Close()
	for _, enc := range []string{"gzip", "br", "identity, gzip"} {
		r := g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"Content-Encoding": {enc}}, gz.String())
		wantError(t, r, http.StatusBadRequest, "invalid_request")
		if !strings.Contains(string(r.Body), "uncompressed") {
			t.Errorf("Content-Encoding %s: the answer does not say what to do: %s", enc, r.Body)
		}
	}
	if n := g.WeChat.Calls(wechattest.PathSubscribeSend); n != 0 {
		t.Errorf("a compressed body reached WeChat %d times", n)
	}
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"Content-Encoding": {"identity"}}, gwMessage))
	// Without a body there is nothing compressed: the call goes on.
	r := g.call(t, "POST", wechattest.PathSubscribeSend, http.Header{"Content-Encoding": {"gzip"}}, "")
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), "uncompressed") {
		t.Errorf("an empty body with a Content-Encoding: %d %s, want WeChat's own answer", r.Status, r.Body)
	}
}

// The access token appears in no answer and no log line, at DEBUG, also
// when WeChat fails; the metric counts by path and result; each call has
// an audit entry on wechat_auth's audit logger.
func TestGatewayKeepsTheTokenToItselfAndCountsCalls(t *testing.T) {
	logPath, logOpt := debugLog(t)
	auditPath := logPath + ".audit"
	global := logOpt + fmt.Sprintf("\n\tlog audit {\n\t\toutput file %s\n\t\tinclude http.handlers.wechat_auth.audit\n\t}", auditPath)
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend + " " + wechattest.PathQRCode + " " + gwSessionAllow, Global: global})
	before := scrapeMetrics(t)
	var answers []*reply
	do := func(method, pq, body string) *reply {
		r := g.call(t, method, pq, nil, body)
		answers = append(answers, r)
		return r
	}
	do("POST", wechattest.PathSubscribeSend+"?access_token=mine", gwMessage)
	tokens := []string{g.WeChat.AccessToken(testAppID)}
	g.WeChat.InvalidateAccessToken(testAppID)
	do("POST", wechattest.PathQRCode, `{"scene":"a"}`)
	tokens = append(tokens, g.WeChat.AccessToken(testAppID))
	g.WeChat.DropNext(wechattest.PathSubscribeSend)
	do("POST", wechattest.PathSubscribeSend, gwMessage)
	g.WeChat.FailNext(wechattest.PathQRCode, wechattest.ErrInvalidToken)
	g.WeChat.FailNext(wechattest.PathQRCode, wechattest.ErrInvalidToken)
	do("POST", wechattest.PathQRCode, `{"scene":"b"}`) // refused twice: WeChat's answer comes back
	do("GET", "/cgi-bin/stable_token", "")
	do("GET", "/wxa/unlisted", "")
	u := g.addUser("gw-leak")
	g.login(t, "gw-leak")
	do("GET", "/wxa/checksession?openid="+u.OpenID, "")
	do("GET", "/wxa/resetusersessionkey?openid="+u.OpenID, "")
	newKey, _ := g.WeChat.SessionKey(u.OpenID)

	// The app secret is left out of the log check: this test writes it
	// into the config, which Caddy logs at DEBUG as the operator wrote it.
	secrets := append(tokens, newKey, u.SessionKey)
	logText := readFile(t, logPath)
	for _, r := range answers {
		if bytes.Contains(r.Body, []byte(testSecret)) {
			t.Errorf("an answer holds the app secret: %s", r.Body)
		}
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a token or key to look for is empty")
		}
		for _, r := range answers {
			if bytes.Contains(r.Body, []byte(s)) || strings.Contains(fmt.Sprint(r.Header), s) {
				t.Errorf("an answer (%d %s) holds a token or key", r.Status, r.Body)
			}
		}
		if i := strings.Index(logText, s); i >= 0 {
			line := logText[strings.LastIndexByte(logText[:i], '\n')+1:]
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("the DEBUG log holds a token or key: %.300s", strings.ReplaceAll(line, s, "<SECRET>"))
		}
	}
	if code := answers[3].Object(t)["errcode"]; code != float64(wechattest.ErrInvalidToken) {
		t.Errorf("a token refused twice answered %s", answers[3].Body)
	}

	after := scrapeMetrics(t)
	const name = "caddy_wechat_auth_api_requests_total"
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{`path="` + wechattest.PathSubscribeSend + `"`, `result="ok"`}, 1},
		{[]string{`path="` + wechattest.PathSubscribeSend + `"`, `result="unavailable"`}, 1},
		{[]string{`path="` + wechattest.PathQRCode + `"`, `result="ok"`}, 1},
		{[]string{`path="` + wechattest.PathQRCode + `"`, `result="40001"`}, 1},
		{[]string{`path="other"`, `result="api_not_allowed"`}, 2},
		{[]string{`path="/wxa/resetusersessionkey"`, `result="ok"`}, 1},
	} {
		if got := metricTotal(after, name, c.labels...) - metricTotal(before, name, c.labels...); got != c.want {
			t.Errorf("%s%v rose by %v, want %v", name, c.labels, got, c.want)
		}
	}

	audit := readFile(t, auditPath)
	if n := strings.Count(audit, `"event":"api"`); n != len(answers) {
		t.Errorf("%d api audit entries for %d calls:\n%s", n, len(answers), audit)
	}
	if !strings.Contains(audit, `"openid":"`+u.OpenID+`"`) || !strings.Contains(audit, `"remote_ip":"127.0.0.1"`) || !strings.Contains(audit, `"logger":"http.handlers.wechat_auth.audit"`) {
		t.Errorf("audit entries lack openid, remote_ip or the audit logger:\n%s", audit)
	}
	os.Remove(auditPath)
}

// With Redis, a gateway in another Caddy process (sharing only Redis and
// the signing key) serves the session-key services for sessions made by
// wechat_auth, and a key it resets is what wechat_auth decrypts with.
func TestGatewayOnAnotherInstanceUsesTheRedisSessions(t *testing.T) {
	rds := rdsStart(t)
	fake, fakeURL := startWeChat(t, optsSingleUse)
	fake.AddApp(testAppID, testSecret)
	up := startUpstream(t)
	shared := fmt.Sprintf("\t\tapp_id %s\n\t\tapp_secret %s\n\t\tapi_base %s\n\t\ttimeout %s\n\t\tstore redis %s\n\t\tsigning_key %s\n",
		testAppID, testSecret, fakeURL, testTimeout, rds.URL, testSigningKey)
	auth := multiNew(t, "auth", "", "\twechat_auth {\n"+shared+"\t}\n\treverse_proxy "+up.Addr)
	gw := multiNew(t, "gateway", "", "\twechat_api {\n"+shared+"\t\tallow "+gwSessionAllow+"\n\t}")
	multiStartAll(t, auth, gw)

	u := fake.AddCode(testAppID, "gw-redis", wechattest.User{OpenID: randomOpenID()})
	lr := loginAt(t, auth.Base, map[string]string{"code": "gw-redis"})
	// wechat_auth holds the session in its L1 now.
	wantStatus(t, postJSON(t, auth.Base+"/wx/refresh", lr.Token, nil), http.StatusOK)
	testSessionKeyServices(t, fake, auth.Base, gw.Base, lr, u.OpenID)
}

// In sandbox the gateway and wechat_auth share the process's fake WeChat:
// the fake knows the session_key of a sandbox login, so checksession
// passes, and a message is accepted.
func TestGatewayRunsOfflineInSandbox(t *testing.T) {
	cf := globalOptions("") + wechatSite(siteBase, "\t\tsandbox", startUpstream(t).Addr, "") +
		fmt.Sprintf("\n%s {\n\twechat_api {\n\t\tsandbox\n\t\tallow %s %s\n\t}\n}\n", siteBase2, wechattest.PathSubscribeSend, gwSessionAllow)
	loadCaddy(t, cf)
	lr := loginAt(t, siteBase, map[string]string{"code": "sandbox-gateway"})
	wantWeChatOK(t, send(t, "POST", siteBase2+wechattest.PathSubscribeSend, http.Header{"Content-Type": {"application/json"}}, gwMessage))
	wantWeChatOK(t, send(t, "GET", siteBase2+"/wxa/checksession?openid="+lr.OpenID, nil, ""))
	wantWeChatOK(t, send(t, "GET", siteBase2+"/wxa/resetusersessionkey?openid="+lr.OpenID, nil, ""))
	wantWeChatOK(t, send(t, "GET", siteBase2+"/wxa/checksession?openid="+lr.OpenID, nil, ""))
	// The same code logs in with the reset key: sandbox encryption and
	// decryption agree with it.
	lr = loginAt(t, siteBase, map[string]string{"code": "sandbox-gateway"})
	r := postJSON(t, siteBase+"/wx/sandbox/encrypt", lr.Token, map[string]any{"a": 1})
	wantStatus(t, r, http.StatusOK)
	sealed := r.Object(t)
	wantStatus(t, postJSON(t, siteBase+"/wx/decrypt", lr.Token, map[string]any{"encryptedData": sealed["encryptedData"], "iv": sealed["iv"]}), http.StatusOK)
}

// One access token per app per process: wechat_auth's phone route and the
// gateway share it, and an invalidation seen by one is refetched once.
func TestGatewayAndPhoneRouteShareOneToken(t *testing.T) {
	g := startGateway(t, gwConfig{Allow: wechattest.PathSubscribeSend})
	g.addUser("gw-phone")
	lr := g.login(t, "gw-phone")
	g.WeChat.AddPhoneCode("gw-phone-1", testPhone)
	g.WeChat.AddPhoneCode("gw-phone-2", testPhone)
	wantPhone(t, postJSON(t, g.Base+"/wx/phone", lr.Token, map[string]string{"code": "gw-phone-1"}), testPhone)
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	if n := g.WeChat.Calls(wechattest.PathStableToken); n != 1 {
		t.Errorf("%d stable_token calls for the phone route and the gateway, want 1", n)
	}
	g.WeChat.InvalidateAccessToken(testAppID)
	wantWeChatOK(t, g.call(t, "POST", wechattest.PathSubscribeSend, nil, gwMessage))
	wantPhone(t, postJSON(t, g.Base+"/wx/phone", lr.Token, map[string]string{"code": "gw-phone-2"}), testPhone)
	if n := g.WeChat.Calls(wechattest.PathStableToken); n != 2 {
		t.Errorf("%d stable_token calls after one invalidation, want 2 (the gateway's refetch serves the phone route too)", n)
	}
}
