package caddytest

// Acceptance points of issue 23 (WeChat Pay) covered here, through a real
// Caddy against the fake WeChat Pay of wechattest, which checks every
// merchant signature with the standard library (not the SDK Caddy uses):
//   - POST and GET-with-query calls arrive signed; the caller's own
//     Authorization never arrives;
//   - unlisted paths and traversal spellings get 403 and reach nothing; an
//     order of an app outside the config gets 400 and reaches nothing;
//   - an answer with a bad, SIGNTEST or missing signature gives 502
//     pay_signature_invalid, never the body; a good one comes back
//     unchanged plus `payment`, whose paySign verifies with the merchant's
//     public key;
//   - payer.openid is filled from X-WX-OPENID when the order lacks it;
//   - platform-certificate mode: certificates fetched on the first answer.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	payMchID  = "1900000001"
	payAPIKey = "apiv3-key-for-tests-0123456789ab" // 32 bytes
	paySerial = "3775B6A45ACD588826D15E583A95F5DD12345678"
	payNotify = "/pay/notify"
	payAllow  = "/v3/pay/transactions/* /v3/refund/domestic/refunds /v3/refund/domestic/refunds/*"
)

var payMerchantKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// payConfig describes a pay stack.
type payConfig struct {
	// Certificates: the merchant has no public key lines and verifies
	// with the platform certificates; the fake signs with its certificate.
	Certificates bool
	// Notify holds the wechat_pay_notify block's lines after `to`; To,
	// when set, replaces the upstream's URL.
	Notify string
	To     string
	// Global holds more global options.
	Global string
	// Store is the wechat app's store line.
	Store string
	// Inline puts the merchant's key lines in wechat_pay and
	// wechat_pay_notify, and none in the wechat app.
	Inline bool
}

// payStack is a fake WeChat Pay, an echoing upstream, and Caddy with
// wechat_pay on siteBase2 and wechat_pay_notify on siteBase.
type payStack struct {
	Pay       *wechattest.Pay
	PayURL    string
	Upstream  *upstream
	GW        string
	Base      string
	Caddyfile string
}

func startPay(t *testing.T, cfg payConfig) *payStack {
	t.Helper()
	pay := newFakePay(t, cfg.Certificates)
	srv := httptest.NewServer(pay)
	t.Cleanup(srv.Close)
	ps := &payStack{Pay: pay, PayURL: srv.URL, Upstream: startUpstream(t), GW: siteBase2, Base: siteBase}
	to := cfg.To
	if to == "" {
		to = "http://" + ps.Upstream.Addr + payNotify
	}
	option, keys := payWeChatOption(t, pay, srv.URL, cfg)
	notify := cfg.Notify
	if cfg.Inline {
		notify += "\n" + keys
	} else {
		keys = ""
	}
	ps.Caddyfile = globalOptions(option+cfg.Global) +
		fmt.Sprintf(`
%s {
	wechat_pay {
		mch_id %s
		allow %s
%s
	}
}
%s {
%s
	wechat_auth
	reverse_proxy %s
}
`, siteBase2, payMchID, payAllow, keys, siteBase, payNotifyBlock(to, notify), ps.Upstream.Addr)
	loadCaddy(t, ps.Caddyfile)
	return ps
}

// newFakePay returns a fake WeChat Pay of the test merchant.
func newFakePay(t *testing.T, certificates bool) *wechattest.Pay {
	t.Helper()
	pay, err := wechattest.NewPay(wechattest.PayOptions{
		MchID: payMchID, APIv3Key: payAPIKey, MerchantKey: &payMerchantKey().PublicKey, MerchantSerial: paySerial,
		SignWithCertificate: certificates,
	})
	if err != nil {
		t.Fatal(err)
	}
	return pay
}

func payNotifyBlock(to, more string) string {
	return fmt.Sprintf("\twechat_pay_notify %s {\n\t\tmch_id %s\n\t\tto %s\n%s\n\t}", payNotify, payMchID, to, more)
}

// payWeChatOption returns the wechat global option with the test app and
// merchant (none with cfg.Inline), and the merchant's key lines, its keys
// in files read through {file.*}.
func payWeChatOption(t *testing.T, pay *wechattest.Pay, payURL string, cfg payConfig) (option, keyLines string) {
	t.Helper()
	_, wechatURL := startWeChat(t, wechattest.Options{})
	dir := t.TempDir()
	der, err := x509.MarshalPKCS8PrivateKey(payMerchantKey())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("apiclient_key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	apiKeyFile := write("apiv3_key.txt", payAPIKey) // caddytest rewrites paths ending in .key
	pubLines := ""
	if !cfg.Certificates {
		pubFile := write("pub_key.pem", pay.Keys().PublicKeyPEM)
		pubLines = fmt.Sprintf("\t\t\tpublic_key_id %s\n\t\t\tpublic_key {file.%s}\n", pay.Keys().PublicKeyID, pubFile)
	}
	keyLines = fmt.Sprintf("\t\t\tprivate_key {file.%s}\n\t\t\tserial_no %s\n\t\t\tapi_v3_key {file.%s}\n%s", keyFile, paySerial, apiKeyFile, pubLines)
	merchant := fmt.Sprintf("merchant %s {\n%s\t\t}", payMchID, keyLines)
	if cfg.Inline {
		merchant = ""
	}
	return fmt.Sprintf(`	wechat {
		app %s %s
		api_base %s
		signing_key %s
		timeout %s
		%s
		%s
		pay_api_base %s
	}
`, testAppID, testSecret, wechatURL, testSigningKey, testTimeout, cfg.Store, merchant, payURL), keyLines
}

// order returns a JSAPI order body of out_trade_no for appid.
func (ps *payStack) order(appid, outTradeNo, openid string) map[string]any {
	o := map[string]any{
		"appid": appid, "mchid": payMchID, "description": "Caddy T-shirt",
		"out_trade_no": outTradeNo, "notify_url": ps.Base + payNotify,
		"amount": map[string]any{"total": 1, "currency": "CNY"},
	}
	if openid != "" {
		o["payer"] = map[string]any{"openid": openid}
	}
	return o
}

func (ps *payStack) call(t *testing.T, method, pathQuery string, header http.Header, body any) *reply {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	var b string
	if body != nil {
		b = string(mustJSON(t, body))
		header.Set("Content-Type", "application/json")
	}
	return send(t, method, ps.GW+pathQuery, header, b)
}

func newTradeNo() string { return fmt.Sprintf("T%d", time.Now().UnixNano()) }

func TestPayForwardsSignedPostAndGetWithQuery(t *testing.T) {
	ps := startPay(t, payConfig{})
	no := newTradeNo()
	h := http.Header{}
	h.Set("Authorization", "Bearer caller-token-that-must-not-travel")
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", h, ps.order(testAppID, no, "oPayer1"))
	wantStatus(t, r, 200)
	got := r.Object(t)
	o, ok := ps.Pay.Order(no)
	if !ok || got["prepay_id"] != o.PrepayID {
		t.Fatalf("answer %s, order %+v", r.Body, o)
	}
	pm, _ := got["payment"].(map[string]any)
	if pm == nil {
		t.Fatalf("no payment object: %s", r.Body)
	}
	str := func(k string) string { s, _ := pm[k].(string); return s }
	if str("appId") != testAppID || str("package") != "prepay_id="+o.PrepayID || str("signType") != "RSA" {
		t.Fatalf("payment %v", pm)
	}
	if !wechattest.VerifyPaySign(&payMerchantKey().PublicKey, str("appId"), str("timeStamp"), str("nonceStr"), str("package"), str("paySign")) {
		t.Fatal("paySign does not verify with the merchant's public key over appId\\ntimeStamp\\nnonceStr\\npackage\\n")
	}
	// Unchanged but for payment.
	delete(got, "payment")
	if len(got) != 1 {
		t.Fatalf("answer changed: %v", got)
	}

	r = ps.call(t, "GET", "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+payMchID, h, nil)
	wantStatus(t, r, 200)
	if st := r.Object(t)["trade_state"]; st != "NOTPAY" {
		t.Fatalf("query answered %s", r.Body)
	}
	reqs := ps.Pay.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the fake saw %d requests, want 2", len(reqs))
	}
	for _, q := range reqs {
		if !q.Verified || q.Status != 200 {
			t.Errorf("%s %s: verified %v, status %d", q.Method, q.URI, q.Verified, q.Status)
		}
		if strings.Contains(q.Authorization, "caller-token") {
			t.Errorf("the caller's Authorization reached WeChat Pay: %q", q.Authorization)
		}
	}
	if reqs[1].URI != "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+payMchID {
		t.Errorf("query sent as %q", reqs[1].URI)
	}
	if n := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_pay_requests_total", `path="/v3/pay/transactions/*"`, `result="ok"`); n < 2 {
		t.Errorf("pay_requests_total ok = %v, want >= 2", n)
	}
}

// TestPayMerchantKeysInTheHandlers: the merchant's key lines may sit in
// wechat_pay and wechat_pay_notify instead of the wechat app; the calls
// are signed and the answers and callbacks verified as with the app's.
func TestPayMerchantKeysInTheHandlers(t *testing.T) {
	ps := startPay(t, payConfig{Inline: true})
	if strings.Contains(ps.Caddyfile, "merchant "+payMchID) {
		t.Fatal("the wechat app still holds the merchant")
	}
	no := newTradeNo()
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, no, "oPayer1"))
	wantStatus(t, r, 200)
	pm, _ := r.Object(t)["payment"].(map[string]any)
	str := func(k string) string { s, _ := pm[k].(string); return s }
	if !wechattest.VerifyPaySign(&payMerchantKey().PublicKey, str("appId"), str("timeStamp"), str("nonceStr"), str("package"), str("paySign")) {
		t.Fatalf("payment %v does not verify with the merchant's public key", pm)
	}
	if reqs := ps.Pay.Requests(); len(reqs) != 1 || !reqs[0].Verified {
		t.Fatalf("the fake saw %+v", reqs)
	}
	n := freshNotification(t, ps.Pay, no)
	if r := postNotification(t, ps.Base, n); r.Status != 204 {
		t.Fatalf("notification: %d %s, want 204", r.Status, r.Body)
	}
	var id struct{ ID string }
	json.Unmarshal(n.Body, &id)
	got := ps.Upstream.notifications()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	wantDecrypted(t, got[0], id.ID, no)
}

// rawStatus sends a request line as written, with no client cleaning it,
// and returns the answer's status.
func rawStatus(t *testing.T, base, method, target string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", method, target, strings.TrimPrefix(base, "http://"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPayRefusesUnlistedAndTraversalPaths(t *testing.T) {
	ps := startPay(t, payConfig{})
	for _, target := range []string{
		"/v3/merchant/fund/balance/BASIC",
		"/v3/pay/transactions",
		"/v3/pay/transactions/",
		"/v3/pay/transactions/../../merchant/fund/balance/BASIC",
		"/v3/pay/transactions/%2e%2e/%2e%2e/merchant/fund/balance/BASIC",
		"/v3/pay/transactions/id%2f..%2f..%2fmerchant",
		"/v3/pay/transactions/jsapi;x=1",
		"/v3/pay/transactions//jsapi",
		"/v3/pay/transactions/./jsapi",
		"/v3/pay/transactions/jsapi%00",
		"/v3/pay/transactions/jsapi%0d%0aX:1",
		"/v3/pay/transactions/a\\..\\b",
		"/v3/refund/domestic/refunds/x/../../../../merchant",
	} {
		if st := rawStatus(t, ps.GW, "POST", target); st != 403 {
			t.Errorf("POST %s: %d, want 403", target, st)
		}
	}
	r := ps.call(t, "GET", "/v3/merchant/fund/balance/BASIC", nil, nil)
	wantError(t, r, 403, "api_not_allowed")
	if n := len(ps.Pay.Requests()); n != 0 {
		t.Fatalf("%d refused requests reached WeChat Pay", n)
	}
}

func TestPayRefusesOrderOfAnotherApp(t *testing.T) {
	ps := startPay(t, payConfig{})
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order("wx0000000000foreign", newTradeNo(), "oPayer1"))
	wantError(t, r, 400, "invalid_request")
	partner := map[string]any{"sp_appid": testAppID, "sp_mchid": payMchID, "sub_mchid": "1900000109", "sub_appid": "wx0000000000foreign",
		"description": "x", "out_trade_no": newTradeNo(), "notify_url": ps.Base + payNotify, "amount": map[string]any{"total": 1}}
	r = ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, partner)
	wantError(t, r, 400, "invalid_request")
	if n := len(ps.Pay.Requests()); n != 0 {
		t.Fatalf("%d refused orders reached WeChat Pay", n)
	}
}

func TestPayRefusesAnswersWithoutAValidSignature(t *testing.T) {
	ps := startPay(t, payConfig{})
	for _, how := range []string{wechattest.PayAnswerBadSignature, wechattest.PayAnswerSignTest, wechattest.PayAnswerUnsigned} {
		ps.Pay.SpoilNext(how)
		r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, newTradeNo(), "oPayer1"))
		wantError(t, r, 502, "pay_signature_invalid")
		if strings.Contains(string(r.Body), "prepay_id") {
			t.Fatalf("%s: the refused answer's body was passed on: %s", how, r.Body)
		}
	}
	if n := metricTotal(scrapeMetrics(t), "caddy_wechat_auth_pay_requests_total", `result="pay_signature_invalid"`); n < 3 {
		t.Errorf("pay_requests_total pay_signature_invalid = %v, want >= 3", n)
	}
}

func TestPayFillsPayerOpenIDFromTheCaller(t *testing.T) {
	ps := startPay(t, payConfig{})
	no := newTradeNo()
	h := http.Header{}
	h.Set("X-WX-OPENID", "oVerifiedCaller")
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", h, ps.order(testAppID, no, ""))
	wantStatus(t, r, 200)
	if o, _ := ps.Pay.Order(no); o.OpenID != "oVerifiedCaller" {
		t.Fatalf("payer.openid %q, want the caller's", o.OpenID)
	}
	// An order's own payer wins.
	no = newTradeNo()
	r = ps.call(t, "POST", "/v3/pay/transactions/jsapi", h, ps.order(testAppID, no, "oOrderOwn"))
	wantStatus(t, r, 200)
	if o, _ := ps.Pay.Order(no); o.OpenID != "oOrderOwn" {
		t.Fatalf("payer.openid %q, want the order's own", o.OpenID)
	}
	// The caller's openid of another app is never the payer.
	before := len(ps.Pay.Requests())
	h.Set("X-WX-APPID", "wx0000000000otherapp")
	r = ps.call(t, "POST", "/v3/pay/transactions/jsapi", h, ps.order(testAppID, newTradeNo(), ""))
	wantError(t, r, 400, "invalid_request")
	if n := len(ps.Pay.Requests()) - before; n != 0 {
		t.Fatalf("an order for another app's openid reached WeChat Pay")
	}
}

// A signed answer that names prepay_id twice gets no payment object: which
// order wx.requestPayment would pay is a reader's guess.
func TestPayAddsNoPaymentToAnAmbiguousAnswer(t *testing.T) {
	ps := startPay(t, payConfig{})
	ps.Pay.SpoilNext(wechattest.PayAnswerDuplicate)
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, newTradeNo(), "oPayer1"))
	wantStatus(t, r, 200)
	if bytes.Contains(r.Body, []byte(`"payment"`)) {
		t.Fatalf("an answer with prepay_id twice got a payment object: %s", r.Body)
	}
}

func TestPayRefusesMethodsWeChatPayLacks(t *testing.T) {
	ps := startPay(t, payConfig{})
	for _, m := range []string{"HEAD", "OPTIONS", "TRACE"} {
		r := ps.call(t, m, "/v3/pay/transactions/out-trade-no/T1?mchid="+payMchID, nil, nil)
		if r.Status != 405 || !strings.Contains(r.Header.Get("Allow"), "GET") {
			t.Errorf("%s: %d, Allow %q, want 405 with Allow", m, r.Status, r.Header.Get("Allow"))
		}
	}
	if n := len(ps.Pay.Requests()); n != 0 {
		t.Fatalf("%d refused calls reached WeChat Pay", n)
	}
}

func TestPayVerifiesWithFetchedPlatformCertificates(t *testing.T) {
	ps := startPay(t, payConfig{Certificates: true})
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, newTradeNo(), "oPayer1"))
	wantStatus(t, r, 200)
	var got struct {
		PrepayID string `json:"prepay_id"`
	}
	if json.Unmarshal(r.Body, &got) != nil || got.PrepayID == "" {
		t.Fatalf("answer %s", r.Body)
	}
}

func TestPayMerchantErrorsNameTheFieldNotTheKey(t *testing.T) {
	der, _ := x509.MarshalPKCS8PrivateKey(payMerchantKey())
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyFile := filepath.Join(t.TempDir(), "apiclient_key.pem")
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	shortKey := "thirty-one-bytes-of-apiv3-key!!"
	config := func(merchant, site string) string {
		return globalOptions(fmt.Sprintf("\twechat {\n\t\tapp %s %s\n\t\tmerchant %s {\n%s\n\t\t}\n\t}", testAppID, testSecret, payMchID, merchant)) +
			"\nhttp://localhost:9081 {\n" + site + "\n}\n"
	}
	gw := "\twechat_pay {\n\t\tallow /v3/pay/transactions/*\n\t}"
	good := fmt.Sprintf("\t\t\tprivate_key {file.%s}\n\t\t\tserial_no %s\n", keyFile, paySerial)
	for _, tc := range []struct {
		name, merchant, site, want string
	}{
		{"short APIv3 key", good + "\t\t\tapi_v3_key " + shortKey, gw, "api_v3_key"},
		{"private key not PEM", "\t\t\tprivate_key not-a-pem\n\t\t\tserial_no " + paySerial + "\n\t\t\tapi_v3_key " + payAPIKey, gw, "private_key"},
		{"serial not hex", fmt.Sprintf("\t\t\tprivate_key {file.%s}\n\t\t\tserial_no not-hex\n\t\t\tapi_v3_key %s", keyFile, payAPIKey), gw, "serial_no"},
		{"public key id alone", good + "\t\t\tapi_v3_key " + payAPIKey + "\n\t\t\tpublic_key_id PUB_KEY_ID_0119000000012024070100000000000001", gw, "public_key"},
		{"unknown merchant", good + "\t\t\tapi_v3_key " + payAPIKey, "\twechat_pay {\n\t\tmch_id 1900009999\n\t\tallow /v3/pay/transactions/*\n\t}", "1900009999"},
		{"allow outside /v3", good + "\t\t\tapi_v3_key " + payAPIKey, "\twechat_pay {\n\t\tallow /cgi-bin/*\n\t}", "allow"},
		{"notify without to", good + "\t\t\tapi_v3_key " + payAPIKey, "\twechat_pay_notify /pay/notify {\n\t\tmch_id " + payMchID + "\n\t}", "to must be an http:// or https:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := loadError(t, config(tc.merchant, tc.site))
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error does not name %s: %s", tc.want, msg)
			}
			for _, secret := range []string{shortKey, payAPIKey, strings.Split(keyPEM, "\n")[3]} {
				if strings.Contains(msg, secret) {
					t.Errorf("error shows key material: %s", msg)
				}
			}
		})
	}
}

// TestPayHandlerKeysAreNeverLiteral: a private key or APIv3 key written
// as it is in wechat_pay's or wechat_pay_notify's own lines would be part
// of the http app's config, which Caddy writes whole into its DEBUG log
// ("adjusted config") before any handler loads. Such a Caddyfile is
// refused as it is adapted, naming the field, never the key, and the DEBUG
// log of the Caddy it was sent to never holds the key; the same JSON is
// refused when it loads. Placeholders ({file.*}, {env.*}) load
// (TestPayMerchantKeysInTheHandlers).
func TestPayHandlerKeysAreNeverLiteral(t *testing.T) {
	der, _ := x509.MarshalPKCS8PrivateKey(payMerchantKey())
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "apiclient_key.pem")
	apiKeyFile := filepath.Join(dir, "apiv3_key.txt")
	for p, v := range map[string]string{keyFile: keyPEM, apiKeyFile: payAPIKey} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secrets := []string{payAPIKey, strings.Split(keyPEM, "\n")[3]}
	noSecret := func(t *testing.T, what, text string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s shows key material", what)
			}
		}
	}
	logPath, logOption := debugLog(t)
	global := globalOptions(fmt.Sprintf("%s\n\twechat {\n\t\tapp %s %s\n\t}", logOption, testAppID, testSecret))
	loadCaddy(t, global+"\nhttp://localhost:9080 {\n\trespond ok\n}\n")
	t.Cleanup(func() { stopFileLog(t) })
	const otherMchID = "1900000002"
	literalKey := fmt.Sprintf("\t\tprivate_key `%s`\n\t\tserial_no %s\n\t\tapi_v3_key {file.%s}", keyPEM, paySerial, apiKeyFile)
	literalAPIKey := fmt.Sprintf("\t\tprivate_key {file.%s}\n\t\tserial_no %s\n\t\tapi_v3_key %s", keyFile, paySerial, payAPIKey)
	for _, tc := range []struct{ name, site, want string }{
		{"wechat_pay api_v3_key", "\twechat_pay {\n\t\tmch_id " + otherMchID + "\n" + literalAPIKey + "\n\t\tallow /v3/pay/transactions/*\n\t}", "api_v3_key"},
		{"wechat_pay private_key", "\twechat_pay {\n\t\tmch_id " + otherMchID + "\n" + literalKey + "\n\t\tallow /v3/pay/transactions/*\n\t}", "private_key"},
		{"wechat_pay_notify api_v3_key", "\twechat_pay_notify /pay/notify {\n\t\tmch_id " + otherMchID + "\n" + literalAPIKey + "\n\t\tto http://127.0.0.1:9/pay/notify\n\t}", "api_v3_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := refusedLoad(t, "text/caddyfile", global+"\nhttp://localhost:9081 {\n"+tc.site+"\n}\n")
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "placeholder") {
				t.Errorf("error does not ask for %s as a placeholder: %s", tc.want, msg)
			}
			noSecret(t, "error", msg)
		})
	}
	noSecret(t, "DEBUG log", readFile(t, logPath))

	// The same handler in JSON, which no adapter reads first.
	keys, _ := json.Marshal(map[string]string{"private_key": "{file." + keyFile + "}", "serial_no": paySerial, "api_v3_key": payAPIKey})
	jsonConfig := fmt.Sprintf(`{"admin":{"listen":"localhost:2999"},"apps":{"wechat":{"apps":[{"app_id":%q,"app_secret":%q}]},"http":{"servers":{"s":{"listen":["localhost:9081"],"routes":[{"handle":[{"handler":"wechat_pay","mch_id":%q,"keys":%s,"allow":["/v3/pay/transactions/*"]}]}]}}}}}`,
		testAppID, testSecret, otherMchID, keys)
	msg := refusedLoad(t, "application/json", jsonConfig)
	if !strings.Contains(msg, "api_v3_key") || !strings.Contains(msg, "placeholder") {
		t.Errorf("JSON: error does not ask for api_v3_key as a placeholder: %s", msg)
	}
	noSecret(t, "JSON error", msg)
}
