package wechattest_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const (
	payMchID  = "1900000001"
	payAPIKey = "0123456789abcdef0123456789ABCDEF"
	paySerial = "3775B6A45ACD588826D15E583A95F5DD12345678"
)

var (
	merchantKeyOnce sync.Once
	merchantKey     *rsa.PrivateKey
)

func testMerchantKey(t testing.TB) *rsa.PrivateKey {
	merchantKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		merchantKey = k
	})
	return merchantKey
}

// merchant is a stand-alone merchant client written for this test from
// WeChat Pay's documentation: it signs requests and checks answers.
type merchant struct {
	t    *testing.T
	key  *rsa.PrivateKey
	base string
	pay  *wechattest.Pay
}

func newPayFake(t *testing.T, opts wechattest.PayOptions) (*wechattest.Pay, *merchant) {
	t.Helper()
	key := testMerchantKey(t)
	if opts.MchID == "" {
		opts.MchID = payMchID
	}
	opts.APIv3Key = payAPIKey
	opts.MerchantKey = &key.PublicKey
	opts.MerchantSerial = paySerial
	p, err := wechattest.NewPay(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, &merchant{t: t, key: key, base: srv.URL, pay: p}
}

func (m *merchant) authorization(method, uri string, body []byte) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := "n0nce" + ts
	sig, err := wechattest.PaySignRSA(m.key, method+"\n"+uri+"\n"+ts+"\n"+nonce+"\n"+string(body)+"\n")
	if err != nil {
		m.t.Fatal(err)
	}
	return fmt.Sprintf(`WECHATPAY2-SHA256-RSA2048 mchid="%s",nonce_str="%s",timestamp="%s",serial_no="%s",signature="%s"`,
		payMchID, nonce, ts, paySerial, sig)
}

// do sends a request signed with authz (the right one when authz is "").
func (m *merchant) do(method, uri string, body []byte, authz string) (*http.Response, []byte) {
	m.t.Helper()
	if authz == "" {
		authz = m.authorization(method, uri, body)
	}
	req, err := http.NewRequest(method, m.base+uri, bytes.NewReader(body))
	if err != nil {
		m.t.Fatal(err)
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// verified reports whether an answer's signature verifies with the fake's
// public key or certificate, per its Wechatpay-Serial.
func (m *merchant) verified(h http.Header, body []byte) bool {
	keys := m.pay.Keys()
	pub := &keys.PublicKey.PublicKey
	if h.Get("Wechatpay-Serial") == keys.CertSerial {
		pub = keys.Cert.PublicKey.(*rsa.PublicKey)
	} else if h.Get("Wechatpay-Serial") != keys.PublicKeyID {
		return false
	}
	sig := h.Get("Wechatpay-Signature")
	if sig == "" || strings.HasPrefix(sig, "WECHATPAY/SIGNTEST/") {
		return false
	}
	return wechattest.PayVerifyRSA(pub, h.Get("Wechatpay-Timestamp")+"\n"+h.Get("Wechatpay-Nonce")+"\n"+string(body)+"\n", sig)
}

func order(no, notify string) []byte {
	return []byte(fmt.Sprintf(`{"appid":"wx1234567890abcdef","mchid":%q,"description":"a cup of tea","out_trade_no":%q,"notify_url":%q,"amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`, payMchID, no, notify))
}

func open(t *testing.T, r wechattest.PayResource) []byte {
	t.Helper()
	block, _ := aes.NewCipher([]byte(payAPIKey))
	gcm, _ := cipher.NewGCM(block)
	ct, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := gcm.Open(nil, []byte(r.Nonce), ct, []byte(r.AssociatedData))
	if err != nil {
		t.Fatalf("resource does not decrypt: %v", err)
	}
	return pt
}

func TestPayRefusesRequestsWithoutTheMerchantSignature(t *testing.T) {
	p, m := newPayFake(t, wechattest.PayOptions{})
	body := order("T1", "https://example.com/notify")
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged := (&merchant{t: t, key: other}).authorization("POST", "/v3/pay/transactions/jsapi", body)
	good := m.authorization("POST", "/v3/pay/transactions/jsapi", body)
	for name, authz := range map[string]string{
		"another key":      forged,
		"none":             "none",
		"other body":       m.authorization("POST", "/v3/pay/transactions/jsapi", []byte("{}")),
		"other path":       m.authorization("POST", "/v3/pay/transactions/app", body),
		"other mchid":      strings.Replace(good, payMchID, "1900000002", 1),
		"other serial":     strings.Replace(good, paySerial, "ABCDEF0123456789", 1),
		"GET signature":    m.authorization("GET", "/v3/pay/transactions/jsapi", body),
		"scheme lowercase": strings.Replace(good, "WECHATPAY2-SHA256-RSA2048", "wechatpay2-sha256-rsa2048", 1),
	} {
		resp, b := m.do("POST", "/v3/pay/transactions/jsapi", body, authz)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"SIGN_ERROR"`) {
			t.Errorf("%s: %d %s, want 401 SIGN_ERROR", name, resp.StatusCode, b)
		}
		if !m.verified(resp.Header, b) {
			t.Errorf("%s: the 401 is not signed", name)
		}
	}
	if _, ok := p.Order("T1"); ok {
		t.Fatal("an unsigned order was taken")
	}
	if reqs := p.Requests(); len(reqs) != 8 || reqs[0].Verified {
		t.Fatalf("requests recorded: %d", len(reqs))
	}
}

func TestPayOrderFlowSignedEndToEnd(t *testing.T) {
	var got struct {
		sync.Mutex
		header http.Header
		body   []byte
	}
	notify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Lock()
		got.header, got.body = r.Header.Clone(), must(io.ReadAll(r.Body))
		got.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer notify.Close()
	p, m := newPayFake(t, wechattest.PayOptions{})

	resp, b := m.do("POST", "/v3/pay/transactions/jsapi", order("T2", notify.URL+"/pay/notify"), "")
	if resp.StatusCode != 200 || !m.verified(resp.Header, b) {
		t.Fatalf("jsapi: %d %s (signed: %v)", resp.StatusCode, b, m.verified(resp.Header, b))
	}
	var prepay struct {
		PrepayID string `json:"prepay_id"`
	}
	json.Unmarshal(b, &prepay)
	if !strings.HasPrefix(prepay.PrepayID, "wx") {
		t.Fatalf("prepay_id %q", prepay.PrepayID)
	}
	resp, b = m.do("GET", "/v3/pay/transactions/out-trade-no/T2?mchid="+payMchID, nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"trade_state":"NOTPAY"`) || !m.verified(resp.Header, b) {
		t.Fatalf("query before paying: %d %s", resp.StatusCode, b)
	}

	cb, err := p.MarkPaid(prepay.PrepayID)
	if err != nil || cb.Status != http.StatusNoContent {
		t.Fatalf("MarkPaid: %v %+v", err, cb)
	}
	got.Lock()
	if !m.verified(got.header, got.body) {
		t.Fatal("the callback's signature does not verify")
	}
	var n struct {
		ID        string                 `json:"id"`
		EventType string                 `json:"event_type"`
		Resource  wechattest.PayResource `json:"resource"`
	}
	if err := json.Unmarshal(got.body, &n); err != nil || n.EventType != "TRANSACTION.SUCCESS" || n.ID == "" {
		t.Fatalf("callback body %s", got.body)
	}
	got.Unlock()
	var txn struct {
		OutTradeNo    string                  `json:"out_trade_no"`
		TransactionID string                  `json:"transaction_id"`
		TradeState    string                  `json:"trade_state"`
		Payer         struct{ OpenID string } `json:"payer"`
	}
	json.Unmarshal(open(t, n.Resource), &txn)
	if txn.OutTradeNo != "T2" || txn.TradeState != "SUCCESS" || txn.TransactionID == "" || txn.Payer.OpenID != "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" {
		t.Fatalf("decrypted transaction %+v", txn)
	}

	resp, b = m.do("GET", "/v3/pay/transactions/id/"+txn.TransactionID+"?mchid="+payMchID, nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"trade_state":"SUCCESS"`) {
		t.Fatalf("query by id: %d %s", resp.StatusCode, b)
	}
	resp, b = m.do("POST", "/v3/pay/transactions/out-trade-no/T2/close", []byte(`{"mchid":"`+payMchID+`"}`), "")
	if resp.StatusCode != 400 || !strings.Contains(string(b), "ORDERPAID") {
		t.Fatalf("closing a paid order: %d %s", resp.StatusCode, b)
	}
	refund := []byte(`{"out_trade_no":"T2","out_refund_no":"R2","amount":{"refund":40,"total":100,"currency":"CNY"}}`)
	resp, b = m.do("POST", "/v3/refund/domestic/refunds", refund, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"PROCESSING"`) || !m.verified(resp.Header, b) {
		t.Fatalf("refund: %d %s", resp.StatusCode, b)
	}
	resp, b = m.do("GET", "/v3/refund/domestic/refunds/R2", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"SUCCESS"`) || !strings.Contains(string(b), `"refund":40`) {
		t.Fatalf("refund query: %d %s", resp.StatusCode, b)
	}
	cb, err = p.MarkRefunded("R2")
	if err != nil || cb.Status != http.StatusNoContent || cb.URL != notify.URL+"/pay/notify" {
		t.Fatalf("MarkRefunded: %v %+v", err, cb)
	}
	got.Lock()
	if !m.verified(got.header, got.body) || json.Unmarshal(got.body, &n) != nil || n.EventType != "REFUND.SUCCESS" {
		t.Fatalf("refund callback %s", got.body)
	}
	got.Unlock()
	if pt := string(open(t, n.Resource)); !strings.Contains(pt, `"refund_status":"SUCCESS"`) || !strings.Contains(pt, `"out_refund_no":"R2"`) {
		t.Fatalf("refund resource %s", pt)
	}
	too := []byte(`{"out_trade_no":"T2","out_refund_no":"R3","amount":{"refund":61,"total":100,"currency":"CNY"}}`)
	if resp, b = m.do("POST", "/v3/refund/domestic/refunds", too, ""); resp.StatusCode != 403 {
		t.Fatalf("refunding more than is left: %d %s", resp.StatusCode, b)
	}
	// A refunded order is not paid again, and no callback goes out.
	sent := len(p.Callbacks())
	if _, err := p.MarkPaid(prepay.PrepayID); err == nil || len(p.Callbacks()) != sent {
		t.Fatalf("paying a refunded order: %v, %d callbacks after %d", err, len(p.Callbacks()), sent)
	}
}

// An order placed again with the same number gets its prepay_id again;
// another order under a number already used is refused, as WeChat Pay
// refuses it, never answered with the first order's prepay_id.
func TestPayRefusesAnotherOrderUnderAUsedNumber(t *testing.T) {
	_, m := newPayFake(t, wechattest.PayOptions{})
	first := order("T9", "https://example.com/n")
	resp, b := m.do("POST", "/v3/pay/transactions/jsapi", first, "")
	if resp.StatusCode != 200 {
		t.Fatalf("jsapi: %d %s", resp.StatusCode, b)
	}
	if again, b2 := m.do("POST", "/v3/pay/transactions/jsapi", first, ""); again.StatusCode != 200 || string(b2) != string(b) {
		t.Fatalf("the same order again: %d %s, want %s", again.StatusCode, b2, b)
	}
	for _, change := range [][2]string{
		{`"total":100`, `"total":9999`},
		{`"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"`, `"openid":"oSomeoneElse"`},
		{`"a cup of tea"`, `"a pot of tea"`},
	} {
		other := strings.Replace(string(first), change[0], change[1], 1)
		resp, b := m.do("POST", "/v3/pay/transactions/jsapi", []byte(other), "")
		if resp.StatusCode != 400 || !strings.Contains(string(b), "INVALID_REQUEST") || strings.Contains(string(b), "prepay_id") {
			t.Fatalf("%s instead of %s: %d %s", change[1], change[0], resp.StatusCode, b)
		}
	}
}

func TestPayCloseAndMissingOrders(t *testing.T) {
	_, m := newPayFake(t, wechattest.PayOptions{})
	m.do("POST", "/v3/pay/transactions/jsapi", order("T3", "https://example.com/n"), "")
	resp, b := m.do("POST", "/v3/pay/transactions/out-trade-no/T3/close", []byte(`{"mchid":"`+payMchID+`"}`), "")
	if resp.StatusCode != http.StatusNoContent || len(b) != 0 || !m.verified(resp.Header, b) {
		t.Fatalf("close: %d %q", resp.StatusCode, b)
	}
	if resp, b = m.do("GET", "/v3/pay/transactions/out-trade-no/T3?mchid="+payMchID, nil, ""); !strings.Contains(string(b), `"CLOSED"`) {
		t.Fatalf("query after close: %d %s", resp.StatusCode, b)
	}
	if resp, b = m.do("GET", "/v3/pay/transactions/out-trade-no/NOPE?mchid="+payMchID, nil, ""); resp.StatusCode != 404 || !strings.Contains(string(b), "ORDER_NOT_EXIST") {
		t.Fatalf("unknown order: %d %s", resp.StatusCode, b)
	}
	if resp, _ = m.do("GET", "/v3/pay/transactions/out-trade-no/T3", nil, ""); resp.StatusCode != 400 {
		t.Fatalf("query without mchid: %d", resp.StatusCode)
	}
}

func TestPayPartnerOrder(t *testing.T) {
	p, m := newPayFake(t, wechattest.PayOptions{})
	body := []byte(`{"sp_appid":"wx8888888888888888","sp_mchid":"` + payMchID + `","sub_appid":"wx1234567890abcdef","sub_mchid":"1900000109","description":"tea","out_trade_no":"P1","notify_url":"https://example.com/n","amount":{"total":1},"payer":{"sub_openid":"oSub"}}`)
	resp, b := m.do("POST", "/v3/pay/partner/transactions/jsapi", body, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "prepay_id") {
		t.Fatalf("partner jsapi: %d %s", resp.StatusCode, b)
	}
	if o, _ := p.Order("P1"); !o.Partner || o.SubOpenID != "oSub" || o.SubAppID != "wx1234567890abcdef" {
		t.Fatalf("order %+v", o)
	}
}

func TestPaySpoiledAnswersDoNotVerify(t *testing.T) {
	p, m := newPayFake(t, wechattest.PayOptions{})
	for _, how := range []string{wechattest.PayAnswerBadSignature, wechattest.PayAnswerSignTest, wechattest.PayAnswerUnsigned} {
		p.SpoilNext(how)
		resp, b := m.do("GET", "/v3/pay/transactions/out-trade-no/X?mchid="+payMchID, nil, "")
		if m.verified(resp.Header, b) {
			t.Errorf("%s: the answer verifies", how)
		}
		if how == wechattest.PayAnswerUnsigned && resp.Header.Get("Wechatpay-Signature") != "" {
			t.Errorf("unsigned answer has a signature")
		}
		if how == wechattest.PayAnswerSignTest && !strings.HasPrefix(resp.Header.Get("Wechatpay-Signature"), "WECHATPAY/SIGNTEST/") {
			t.Errorf("signtest answer: %q", resp.Header.Get("Wechatpay-Signature"))
		}
	}
	resp, b := m.do("GET", "/v3/pay/transactions/out-trade-no/X?mchid="+payMchID, nil, "")
	if !m.verified(resp.Header, b) {
		t.Fatal("the answer after the spoiled ones does not verify")
	}
}

func TestPayCertificatesDecryptToTheSigningCertificate(t *testing.T) {
	p, m := newPayFake(t, wechattest.PayOptions{SignWithCertificate: true})
	resp, b := m.do("GET", "/v3/certificates", nil, "")
	if resp.StatusCode != 200 || resp.Header.Get("Wechatpay-Serial") != p.Keys().CertSerial || !m.verified(resp.Header, b) {
		t.Fatalf("certificates: %d %s", resp.StatusCode, b)
	}
	var a struct {
		Data []struct {
			SerialNo string                 `json:"serial_no"`
			Enc      wechattest.PayResource `json:"encrypt_certificate"`
		} `json:"data"`
	}
	json.Unmarshal(b, &a)
	if len(a.Data) != 1 || a.Data[0].SerialNo != p.Keys().CertSerial || a.Data[0].Enc.AssociatedData != "certificate" {
		t.Fatalf("certificates %s", b)
	}
	block, _ := pem.Decode(open(t, a.Data[0].Enc))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || fmt.Sprintf("%X", cert.SerialNumber.Bytes()) != p.Keys().CertSerial {
		t.Fatalf("certificate: %v", err)
	}
	p.SetSignWithCertificate(false)
	resp, b = m.do("GET", "/v3/certificates", nil, "")
	if resp.Header.Get("Wechatpay-Serial") != p.Keys().PublicKeyID || !m.verified(resp.Header, b) {
		t.Fatal("public-key mode answer")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPayRefusesAnOpenIDOfAnotherApp(t *testing.T) {
	p, m := newPayFake(t, wechattest.PayOptions{Payers: map[string]string{
		"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o": "wx1234567890abcdef",
		"oOther":                       "wxffffffffffffffff",
	}})
	resp, b := m.do("POST", "/v3/pay/transactions/jsapi", order("T5", "https://example.com/n"), "")
	if resp.StatusCode != 200 {
		t.Fatalf("an openid of the order's app: %d %s", resp.StatusCode, b)
	}
	other := bytes.Replace(order("T6", "https://example.com/n"), []byte("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), []byte("oOther"), 1)
	resp, b = m.do("POST", "/v3/pay/transactions/jsapi", other, "")
	if resp.StatusCode != 400 || !strings.Contains(string(b), "appid和openid不匹配") {
		t.Fatalf("an openid of another app: %d %s", resp.StatusCode, b)
	}
	if _, ok := p.Order("T6"); ok {
		t.Fatal("the mismatched order was taken")
	}
}

// TestPayRefusesOtherCurrenciesAndNonPositiveRefunds: a domestic merchant
// is paid and refunds in CNY only, and a refund of nothing or less is a
// malformed request (PARAM_ERROR), not an amount over what is left.
func TestPayRefusesOtherCurrenciesAndNonPositiveRefunds(t *testing.T) {
	notify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer notify.Close()
	p, m := newPayFake(t, wechattest.PayOptions{})
	usd := bytes.Replace(order("T7", notify.URL), []byte(`"CNY"`), []byte(`"USD"`), 1)
	resp, b := m.do("POST", "/v3/pay/transactions/jsapi", usd, "")
	if resp.StatusCode != 400 || !strings.Contains(string(b), "PARAM_ERROR") {
		t.Fatalf("an order in USD: %d %s", resp.StatusCode, b)
	}
	if _, ok := p.Order("T7"); ok {
		t.Fatal("the USD order was taken")
	}
	resp, b = m.do("POST", "/v3/pay/transactions/jsapi", order("T8", notify.URL), "")
	var prepay struct {
		PrepayID string `json:"prepay_id"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &prepay) != nil {
		t.Fatalf("an order in CNY: %d %s", resp.StatusCode, b)
	}
	if _, err := p.MarkPaid(prepay.PrepayID); err != nil {
		t.Fatal(err)
	}
	for _, amount := range []string{
		`{"refund":40,"total":100,"currency":"EUR"}`,
		`{"refund":40,"total":100}`,
		`{"refund":0,"total":100,"currency":"CNY"}`,
		`{"refund":-3,"total":100,"currency":"CNY"}`,
	} {
		refund := []byte(`{"out_trade_no":"T8","out_refund_no":"R8","amount":` + amount + `}`)
		resp, b = m.do("POST", "/v3/refund/domestic/refunds", refund, "")
		if resp.StatusCode != 400 || !strings.Contains(string(b), "PARAM_ERROR") {
			t.Errorf("a refund of %s: %d %s", amount, resp.StatusCode, b)
		}
	}
	refund := []byte(`{"out_trade_no":"T8","out_refund_no":"R8","amount":{"refund":100,"total":100,"currency":"CNY"}}`)
	if resp, b = m.do("POST", "/v3/refund/domestic/refunds", refund, ""); resp.StatusCode != 200 {
		t.Fatalf("the whole order refunded in CNY after the refused tries: %d %s", resp.StatusCode, b)
	}
}

func TestPayRefusesAStaleMerchantSignature(t *testing.T) {
	clock := wechattest.NewClock(time.Now())
	_, m := newPayFake(t, wechattest.PayOptions{Now: clock.Now})
	clock.Advance(6 * time.Minute)
	resp, b := m.do("GET", "/v3/pay/transactions/out-trade-no/X?mchid="+payMchID, nil, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "SIGN_ERROR") {
		t.Fatalf("a signature 6 minutes old: %d %s", resp.StatusCode, b)
	}
}

// A body naming a member twice, in any spelling of case, is refused: the
// fake's reader would take the last spelling where WeChat Pay, reading
// case by case, takes another, so the sandbox would charge another order
// than the one the gateway and the upstream see.
func TestPayRefusesAMemberNamedTwice(t *testing.T) {
	_, m := newPayFake(t, wechattest.PayOptions{})
	for _, body := range []string{
		strings.Replace(string(order("T8", "https://example.com/n")), `"out_trade_no":"T8"`, `"out_trade_no":"T8","OUT_TRADE_NO":"T9"`, 1),
		strings.Replace(string(order("T8", "https://example.com/n")), `"total":100`, `"total":100,"Total":1`, 1),
		strings.Replace(string(order("T8", "https://example.com/n")), `"amount":`, `"Amount":{"total":1},"amount":`, 1),
		strings.Replace(string(order("T8", "https://example.com/n")), `"description":`, `"deſcription":"a forged one","description":`, 1),
	} {
		resp, b := m.do("POST", "/v3/pay/transactions/jsapi", []byte(body), "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "PARAM_ERROR") {
			t.Errorf("%s: %d %s, want 400 PARAM_ERROR", body, resp.StatusCode, b)
		}
	}
	for _, no := range []string{"T8", "T9"} {
		if resp, _ := m.do("GET", "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+payMchID, nil, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("order %s exists after refused bodies: %d", no, resp.StatusCode)
		}
	}
	if resp, b := m.do("POST", "/v3/pay/transactions/jsapi", order("T8", "https://example.com/n"), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the same order, each member once: %d %s", resp.StatusCode, b)
	}
}
