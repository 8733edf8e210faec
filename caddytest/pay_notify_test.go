package caddytest

// Acceptance points of issue 23 for wechat_pay_notify, through a real
// Caddy, the notifications built and signed by the fake WeChat Pay:
//   - a fresh notification is delivered decrypted with X-WX-SOURCE
//     wx_paycallback, X-WX-EVENT-ID and X-WX-MCHID, and WeChat Pay gets 204;
//   - a bad signature, a SIGNTEST probe, a 10-minute-old timestamp,
//     WeChat's own 2021 sample callback replayed, a tampered ciphertext:
//     401 {"code":"FAIL"}, nothing delivered;
//   - the same id three times is delivered once;
//   - upstream down: WeChat Pay gets 2xx, and the notification reaches the
//     upstream within 30 s of its return, across a Caddy restart (memory
//     store: Caddy's storage); the same end to end with Redis;
//   - sandbox: login, order, /wx/sandbox/pay, and the decrypted
//     TRANSACTION.SUCCESS of that out_trade_no at the upstream within 10 s;
//   - no merchant key, APIv3 key or paySign in any DEBUG log line.

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// transactionPlaintext is a decrypted TRANSACTION.SUCCESS resource.
func transactionPlaintext(outTradeNo, openid string) []byte {
	return []byte(fmt.Sprintf(`{"mchid":%q,"appid":%q,"out_trade_no":%q,"transaction_id":"4200000000202612050000000001","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","payer":{"openid":%q},"amount":{"total":1,"currency":"CNY"}}`,
		payMchID, testAppID, outTradeNo, openid))
}

func freshNotification(t *testing.T, pay *wechattest.Pay, outTradeNo string) wechattest.PayNotification {
	t.Helper()
	n, err := pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", transactionPlaintext(outTradeNo, "oPayer1"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// signAt signs body as the fake's public key would at ts.
func signAt(t *testing.T, pay *wechattest.Pay, body []byte, ts time.Time) http.Header {
	t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	nonce := "fT7bXJr3Lq9mZ2kP0sVd4WcYh8NgAe1u"
	sig, err := wechattest.PaySignRSA(pay.Keys().PublicKey, stamp+"\n"+nonce+"\n"+string(body)+"\n")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Wechatpay-Timestamp", stamp)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", sig)
	h.Set("Wechatpay-Serial", pay.Keys().PublicKeyID)
	return h
}

func postNotification(t *testing.T, base string, n wechattest.PayNotification) *reply {
	t.Helper()
	return send(t, "POST", base+payNotify, n.Header.Clone(), string(n.Body))
}

// notifications returns what the upstream got on the notify path.
func (u *upstream) notifications() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, s := range u.seen {
		if s.Path == payNotify {
			out = append(out, s)
		}
	}
	return out
}

func wantDecrypted(t *testing.T, got seenRequest, id, outTradeNo string) {
	t.Helper()
	if got.Method != "POST" || got.Header.Get("X-Wx-Source") != "wx_paycallback" || got.Header.Get("X-Wx-Event-Id") != id || got.Header.Get("X-Wx-Mchid") != payMchID {
		t.Fatalf("delivery %s with headers %v", got.Method, got.Header)
	}
	var body struct {
		ID        string `json:"id"`
		EventType string `json:"event_type"`
		Resource  struct {
			OutTradeNo string `json:"out_trade_no"`
			TradeState string `json:"trade_state"`
			Ciphertext string `json:"ciphertext"`
		} `json:"resource"`
	}
	if err := json.Unmarshal([]byte(got.Body), &body); err != nil {
		t.Fatalf("delivered body: %v: %s", err, got.Body)
	}
	if body.ID != id || body.EventType != "TRANSACTION.SUCCESS" || body.Resource.OutTradeNo != outTradeNo ||
		body.Resource.TradeState != "SUCCESS" || body.Resource.Ciphertext != "" {
		t.Fatalf("delivered body is not the decrypted notification: %s", got.Body)
	}
}

func wantFail(t *testing.T, r *reply) {
	t.Helper()
	var body struct{ Code, Message string }
	if r.Status != 401 || json.Unmarshal(r.Body, &body) != nil || body.Code != "FAIL" || body.Message == "" {
		t.Fatalf("answered %d %s, want 401 {\"code\":\"FAIL\",…}", r.Status, r.Body)
	}
}

func TestPayNotifyDeliversDecryptedOnce(t *testing.T) {
	ps := startPay(t, payConfig{})
	no := newTradeNo()
	n := freshNotification(t, ps.Pay, no)
	var id struct{ ID string }
	json.Unmarshal(n.Body, &id)
	for i := 0; i < 3; i++ {
		r := postNotification(t, ps.Base, n)
		if r.Status != 204 {
			t.Fatalf("try %d: %d %s, want 204", i+1, r.Status, r.Body)
		}
	}
	got := ps.Upstream.notifications()
	if len(got) != 1 {
		t.Fatalf("the same notification was delivered %d times, want once", len(got))
	}
	wantDecrypted(t, got[0], id.ID, no)
}

func TestPayNotifyRefusesWhatDoesNotVerify(t *testing.T) {
	ps := startPay(t, payConfig{})
	fresh := func() wechattest.PayNotification { return freshNotification(t, ps.Pay, newTradeNo()) }

	bad := fresh()
	other := fresh()
	bad.Header.Set("Wechatpay-Signature", other.Header.Get("Wechatpay-Signature"))

	probe := fresh()
	probe.Header.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+probe.Header.Get("Wechatpay-Signature"))

	old := fresh()
	old.Header = signAt(t, ps.Pay, old.Body, time.Now().Add(-10*time.Minute))

	// WeChat Pay's own sample callback of 2021-06-24 (the SDK's test
	// vector), replayed as it was sent.
	sample := wechattest.PayNotification{Header: http.Header{}, Body: []byte(`{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}`)}
	sample.Header.Set("Content-Type", "application/json")
	sample.Header.Set("Wechatpay-Nonce", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz")
	sample.Header.Set("Wechatpay-Timestamp", "1624523846")
	sample.Header.Set("Wechatpay-Serial", "D7CE59D1F522D701")
	sample.Header.Set("Wechatpay-Signature", "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXF"+
		"lbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1I"+
		"BLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY4"+
		"06ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==")

	// A ciphertext altered and the body signed again: the signature is
	// good, the resource does not open.
	tampered := fresh()
	var doc map[string]any
	json.Unmarshal(tampered.Body, &doc)
	res := doc["resource"].(map[string]any)
	ct := res["ciphertext"].(string)
	flip := "A"
	if ct[0] == 'A' {
		flip = "B"
	}
	res["ciphertext"] = flip + ct[1:]
	tampered.Body = mustJSON(t, doc)
	tampered.Header = signAt(t, ps.Pay, tampered.Body, time.Now())

	// Signed and sealed with this merchant's keys, yet about another
	// merchant's money: X-WX-MCHID would contradict the body.
	otherPlain := bytes.Replace(transactionPlaintext(newTradeNo(), "oPayer1"), []byte(`"mchid":"`+payMchID+`"`), []byte(`"mchid":"1900009999"`), 1)
	otherMerchant, err := ps.Pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", otherPlain)
	if err != nil || !bytes.Contains(otherPlain, []byte("1900009999")) {
		t.Fatalf("another merchant's notification: %v", err)
	}
	// A merchant that cannot be read is no more this merchant's.
	numPlain := bytes.Replace(transactionPlaintext(newTradeNo(), "oPayer1"), []byte(`"mchid":"`+payMchID+`"`), []byte(`"mchid":1900009999`), 1)
	numMerchant, err := ps.Pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", numPlain)
	if err != nil || !bytes.Contains(numPlain, []byte(`"mchid":1900009999`)) {
		t.Fatalf("a notification with a numeric mchid: %v", err)
	}

	// A payer given twice: X-WX-OPENID would name one, and an upstream
	// reading the body's first copy the other.
	twicePlain := bytes.Replace(transactionPlaintext(newTradeNo(), "oPayer1"), []byte(`"payer":{`), []byte(`"payer":{"openid":"oPayer2"},"payer":{`), 1)
	twice, err := ps.Pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", twicePlain)
	if err != nil || !bytes.Contains(twicePlain, []byte("oPayer2")) {
		t.Fatalf("a notification giving its payer twice: %v", err)
	}

	for name, n := range map[string]wechattest.PayNotification{
		"bad signature": bad, "SIGNTEST probe": probe, "10 minutes old": old,
		"WeChat's 2021 sample replayed": sample, "tampered ciphertext": tampered,
		"another merchant's": otherMerchant, "merchant as a number": numMerchant,
		"payer given twice": twice,
	} {
		t.Run(name, func(t *testing.T) { wantFail(t, postNotification(t, ps.Base, n)) })
	}
	if got := ps.Upstream.notifications(); len(got) != 0 {
		t.Fatalf("%d refused notifications were delivered", len(got))
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// upstreamAt starts an echoing upstream on addr.
func upstreamAt(t *testing.T, addr string) *upstream {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u := new(upstream)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	u.Addr = addr
	return u
}

// payProcess runs a Caddy process with wechat_pay_notify delivering to to.
func payProcess(t *testing.T, pay *wechattest.Pay, payURL, to string, cfg payConfig) *multiCaddy {
	t.Helper()
	option, _ := payWeChatOption(t, pay, payURL, cfg)
	m := multiNew(t, "pay", option, payNotifyBlock(to, ""))
	m.Start()
	return m
}

func TestPayNotifyUpstreamDownSurvivesRestart(t *testing.T) {
	pay := newFakePay(t, false)
	addr := freeAddr(t)
	m := payProcess(t, pay, "http://127.0.0.1:1", "http://"+addr+payNotify, payConfig{})
	no := newTradeNo()
	n := freshNotification(t, pay, no)
	r := postNotification(t, m.Base, n)
	if r.Status < 200 || r.Status > 299 {
		t.Fatalf("upstream down: WeChat Pay got %d %s, want 2xx", r.Status, r.Body)
	}
	m.Stop()
	m.Start()
	up := upstreamAt(t, addr)
	back := time.Now()
	if !within(30*time.Second, func() bool { return len(up.notifications()) > 0 }) {
		t.Fatal("the queued notification did not reach the upstream within 30 s of its return")
	}
	t.Logf("delivered %v after the upstream came back", time.Since(back).Round(100*time.Millisecond))
	var id struct{ ID string }
	json.Unmarshal(n.Body, &id)
	wantDecrypted(t, up.notifications()[0], id.ID, no)
	// WeChat Pay retries: not delivered again.
	if r := postNotification(t, m.Base, n); r.Status != 204 {
		t.Fatalf("WeChat Pay's retry answered %d", r.Status)
	}
	time.Sleep(300 * time.Millisecond)
	if k := len(up.notifications()); k != 1 {
		t.Fatalf("delivered %d times, want once", k)
	}
}

func TestPayNotifyWithRedis(t *testing.T) {
	rds := rdsStart(t)
	pay := newFakePay(t, false)
	addr := freeAddr(t)
	m := payProcess(t, pay, "http://127.0.0.1:1", "http://"+addr+payNotify, payConfig{Store: "store redis " + rds.URL})
	no := newTradeNo()
	n := freshNotification(t, pay, no)
	if r := postNotification(t, m.Base, n); r.Status != 204 {
		t.Fatalf("upstream down: WeChat Pay got %d %s, want 204 (queued in Redis)", r.Status, r.Body)
	}
	m.Stop()
	m.Start()
	up := upstreamAt(t, addr)
	if !within(30*time.Second, func() bool { return len(up.notifications()) > 0 }) {
		t.Fatal("the notification queued in Redis did not reach the upstream within 30 s")
	}
	var id struct{ ID string }
	json.Unmarshal(n.Body, &id)
	wantDecrypted(t, up.notifications()[0], id.ID, no)
	for i := 0; i < 2; i++ {
		if r := postNotification(t, m.Base, n); r.Status != 204 {
			t.Fatalf("retry: %d", r.Status)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if k := len(up.notifications()); k != 1 {
		t.Fatalf("delivered %d times, want once", k)
	}
}

func TestPaySandboxOrderFlowEndToEnd(t *testing.T) {
	up := startUpstream(t)
	logPath, logOption := debugLog(t)
	loadCaddy(t, globalOptions(fmt.Sprintf(`	wechat {
		sandbox
		signing_key %s
		merchant %s
	}
%s`, testSigningKey, payMchID, logOption))+fmt.Sprintf(`
%s {
	wechat_pay {
		allow /v3/pay/transactions/* /v3/refund/domestic/refunds
	}
}
%s {
%s
	wechat_auth
	reverse_proxy %s
}
`, siteBase2, siteBase, payNotifyBlock("http://"+up.Addr+payNotify, ""), up.Addr))

	login := loginAt(t, siteBase, map[string]string{"code": "sandbox-pay-code"})
	no := newTradeNo()
	order := map[string]any{
		"appid": "wxsandbox0000000", "mchid": payMchID, "description": "Sandbox T-shirt",
		"out_trade_no": no, "notify_url": siteBase + payNotify, "amount": map[string]any{"total": 1},
	}
	h := http.Header{}
	h.Set("X-WX-OPENID", login.OpenID) // as the upstream passes on the verified caller
	h.Set("Content-Type", "application/json")
	r := send(t, "POST", siteBase2+"/v3/pay/transactions/jsapi", h, string(mustJSON(t, order)))
	wantStatus(t, r, 200)
	var answer struct {
		PrepayID string            `json:"prepay_id"`
		Payment  map[string]string `json:"payment"`
	}
	if json.Unmarshal(r.Body, &answer) != nil || answer.PrepayID == "" || answer.Payment["paySign"] == "" {
		t.Fatalf("order answered %s", r.Body)
	}

	start := time.Now()
	r = postJSON(t, siteBase+"/wx/sandbox/pay", login.Token, map[string]string{"prepay_id": answer.PrepayID})
	wantStatus(t, r, 200)
	if r.Object(t)["out_trade_no"] != no {
		t.Fatalf("sandbox pay answered %s", r.Body)
	}
	if !within(10*time.Second, func() bool { return len(up.notifications()) > 0 }) {
		t.Fatal("no TRANSACTION.SUCCESS reached the upstream within 10 s")
	}
	t.Logf("TRANSACTION.SUCCESS at the upstream %v after /wx/sandbox/pay", time.Since(start).Round(time.Millisecond))
	got := up.notifications()[0]
	wantDecrypted(t, got, got.Header.Get("X-Wx-Event-Id"), no)
	if got.Header.Get("X-Wx-Openid") != login.OpenID {
		t.Errorf("X-WX-OPENID %q, want the payer's", got.Header.Get("X-Wx-Openid"))
	}

	// Paying it again is WeChat Pay's retry of the same notification:
	// answered, and not delivered a second time.
	wantStatus(t, postJSON(t, siteBase+"/wx/sandbox/pay", login.Token, map[string]string{"prepay_id": answer.PrepayID}), 200)
	time.Sleep(time.Second)
	if n := len(up.notifications()); n != 1 {
		t.Fatalf("paying the order again delivered it %d times, want once", n)
	}

	// Another user cannot pay it; no token, no pay.
	other := loginAt(t, siteBase, map[string]string{"code": "another-user-code"})
	if other.OpenID != login.OpenID {
		wantError(t, postJSON(t, siteBase+"/wx/sandbox/pay", other.Token, map[string]string{"prepay_id": answer.PrepayID}), 400, "invalid_request")
	}
	wantError(t, postJSON(t, siteBase+"/wx/sandbox/pay", "", map[string]string{"prepay_id": answer.PrepayID}), 401, "unauthorized")

	// A refund through the gateway is followed, as at WeChat Pay, by its
	// REFUND.SUCCESS callback to the refund's notify_url.
	refund := map[string]any{
		"out_trade_no": no, "out_refund_no": "R" + no, "notify_url": siteBase + payNotify,
		"amount": map[string]any{"refund": 1, "total": 1, "currency": "CNY"},
	}
	r = send(t, "POST", siteBase2+"/v3/refund/domestic/refunds", h, string(mustJSON(t, refund)))
	wantStatus(t, r, 200)
	if !within(10*time.Second, func() bool { return len(up.notifications()) > 1 }) {
		t.Fatal("no REFUND.SUCCESS reached the upstream within 10 s of the refund")
	}
	if body := up.notifications()[1].Body; !strings.Contains(body, `"event_type":"REFUND.SUCCESS"`) ||
		!strings.Contains(body, `"refund_status":"SUCCESS"`) || !strings.Contains(body, `"out_refund_no":"R`+no+`"`) {
		t.Fatalf("the refund's callback reached the upstream as %s", body)
	}
	// A refunded order cannot be paid again, and says so.
	r = postJSON(t, siteBase+"/wx/sandbox/pay", login.Token, map[string]string{"prepay_id": answer.PrepayID})
	wantError(t, r, 400, "invalid_request")
	if !strings.Contains(string(r.Body), "refunded") {
		t.Fatalf("paying a refunded order: %s", r.Body)
	}

	if log := readFile(t, logPath); strings.Contains(log, answer.Payment["paySign"]) {
		t.Fatal("the paySign is in the DEBUG log")
	}
}

func TestPaySecretsNeverInDebugLog(t *testing.T) {
	logPath, logOption := debugLog(t)
	ps := startPay(t, payConfig{Global: logOption})
	r := ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, newTradeNo(), "oPayer1"))
	wantStatus(t, r, 200)
	var answer struct {
		Payment map[string]string `json:"payment"`
	}
	json.Unmarshal(r.Body, &answer)
	if r := postNotification(t, ps.Base, freshNotification(t, ps.Pay, newTradeNo())); r.Status != 204 {
		t.Fatalf("notification: %d", r.Status)
	}
	ps.Pay.SpoilNext(wechattest.PayAnswerBadSignature)
	ps.call(t, "POST", "/v3/pay/transactions/jsapi", nil, ps.order(testAppID, newTradeNo(), "oPayer1"))
	bad := freshNotification(t, ps.Pay, newTradeNo())
	bad.Header.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+bad.Header.Get("Wechatpay-Signature"))
	postNotification(t, ps.Base, bad)

	log := readFile(t, logPath)
	if !strings.Contains(log, "DEBUG") && !strings.Contains(log, `"level":"debug"`) {
		t.Fatal("the log holds no DEBUG line: the check would prove nothing")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(payMerchantKey())
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	secrets := map[string]string{
		"APIv3 key":         payAPIKey,
		"merchant key line": strings.Split(keyPEM, "\n")[5],
		"paySign":           answer.Payment["paySign"],
	}
	for what, s := range secrets {
		if s == "" || strings.Contains(log, s) {
			t.Errorf("the %s is in the DEBUG log (or empty)", what)
		}
	}
}

// TestPayNotifyRefusesUnsendableHeaders: a verified notification whose id
// (or decrypted openid) holds a CR or LF could never be delivered, its
// headers being invalid; it is refused 400 in the FAIL shape, not 204.
func TestPayNotifyRefusesUnsendableHeaders(t *testing.T) {
	ps := startPay(t, payConfig{})
	n := freshNotification(t, ps.Pay, newTradeNo())
	var m map[string]any
	if err := json.Unmarshal(n.Body, &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = "3119dfba-e649-5eec\nab1e-3412bc4d2e17"
	body, _ := json.Marshal(m)
	badID := wechattest.PayNotification{Header: signAt(t, ps.Pay, body, time.Now()), Body: body}
	badOpenID, err := ps.Pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", transactionPlaintext(newTradeNo(), "oPayer\r\nX-Evil: 1"))
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]wechattest.PayNotification{"id": badID, "openid": badOpenID} {
		r := postNotification(t, ps.Base, n)
		var fail struct{ Code, Message string }
		json.Unmarshal(r.Body, &fail)
		if r.Status != http.StatusBadRequest || fail.Code != "FAIL" {
			t.Errorf("%s with a line break: %d %s, want 400 FAIL", name, r.Status, r.Body)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := ps.Upstream.notifications(); len(got) != 0 {
		t.Errorf("%d delivered, want none", len(got))
	}
}

// A notification Caddy is reading when a reload removes its receiver is
// still taken (204, delivered), not refused with 503: the replaced
// config keeps the outbox for the requests it began.
func TestPayNotifyReadDuringAReloadIsTaken(t *testing.T) {
	ps := startPay(t, payConfig{})
	n := freshNotification(t, ps.Pay, newTradeNo())
	c, err := net.Dial("tcp", strings.TrimPrefix(ps.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", payNotify, strings.TrimPrefix(ps.Base, "http://"), len(n.Body))
	for k, vs := range n.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(c, head.String()+string(n.Body[:1])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the handler is reading the body
	without := strings.Replace(ps.Caddyfile, payNotifyBlock("http://"+ps.Upstream.Addr+payNotify, ""), "", 1)
	if without == ps.Caddyfile {
		t.Fatal("the test could not remove the receiver from the config")
	}
	loadCaddy(t, without)
	if _, err := c.Write(n.Body[1:]); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to the notification read across the reload: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("the notification read across the reload: %d %s, want 204", res.StatusCode, body)
	}
	if got := ps.Upstream.notifications(); len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
}
