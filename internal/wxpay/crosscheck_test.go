package wxpay

import (
	"bytes"
	"encoding/json"
	"errors"
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

// These tests set our SDK-based merchant against wechattest's fake WeChat
// Pay, whose crypto is the standard library written on its own.

type pair struct {
	pay  *wechattest.Pay
	m    *Merchant
	base string
}

// newPair returns the fake and a merchant of it: public-key mode when
// publicKey is true, else certificate mode with nothing fetched yet.
func newPair(t *testing.T, publicKey bool, opts wechattest.PayOptions) pair {
	t.Helper()
	key, keyPEM := merchantKey(t)
	opts.MchID, opts.APIv3Key, opts.MerchantKey, opts.MerchantSerial = testMchID, testAPIKey, &key.PublicKey, testSerial
	pay, err := wechattest.NewPay(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pay)
	t.Cleanup(srv.Close)
	cfg := Config{MchID: testMchID, PrivateKey: keyPEM, SerialNo: testSerial, APIv3Key: testAPIKey}
	if publicKey {
		cfg.PublicKeyID, cfg.PublicKey = pay.Keys().PublicKeyID, pay.Keys().PublicKeyPEM
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pair{pay: pay, m: m, base: srv.URL}
}

// do signs and sends a request the way the gateway will, and returns the
// answer's status, headers and body.
func (p pair) do(t *testing.T, method, uri string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	authz, err := p.m.SignRequest(method, uri, body, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, p.base+uri, bytes.NewReader(body))
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Wechatpay-Serial", p.m.WechatpaySerial())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func jsapiOrder(no, notify string) []byte {
	return []byte(`{"appid":"wx1234567890abcdef","mchid":"` + testMchID + `","description":"茶 & <cake>","out_trade_no":"` + no +
		`","notify_url":"` + notify + `","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}`)
}

func TestFakeAcceptsOurSignaturesAndWeVerifyItsAnswers(t *testing.T) {
	p := newPair(t, true, wechattest.PayOptions{})
	status, h, b := p.do(t, "POST", "/v3/pay/transactions/jsapi", jsapiOrder("T1", "https://example.com/pay/notify"))
	if status != 200 {
		t.Fatalf("POST jsapi: %d %s", status, b)
	}
	if err := p.m.VerifyResponse(h, b); err != nil {
		t.Fatalf("the fake's answer to POST: %v", err)
	}
	for _, c := range []struct {
		method, uri, body string
		status            int
	}{
		{"GET", "/v3/pay/transactions/out-trade-no/T1?mchid=" + testMchID, "", 200},
		{"GET", "/v3/pay/transactions/out-trade-no/NOPE?mchid=" + testMchID, "", 404},
		{"POST", "/v3/pay/transactions/out-trade-no/T1/close", `{"mchid":"` + testMchID + `"}`, 204},
		{"GET", "/v3/certificates", "", 200},
	} {
		status, h, b := p.do(t, c.method, c.uri, []byte(c.body))
		if status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.uri, status, b, c.status)
		}
		if err := p.m.VerifyResponse(h, b); err != nil {
			t.Errorf("%s %s: the answer does not verify: %v", c.method, c.uri, err)
		}
	}
	for _, r := range p.pay.Requests() {
		if !r.Verified {
			t.Errorf("the fake refused our signature on %s %s", r.Method, r.URI)
		}
	}
	// The query is signed: the same signature on another query fails.
	authz, _ := p.m.SignRequest("GET", "/v3/pay/transactions/out-trade-no/T1?mchid="+testMchID, nil, time.Now(), "")
	req, _ := http.NewRequest("GET", p.base+"/v3/pay/transactions/out-trade-no/T1?mchid=1900000002", nil)
	req.Header.Set("Authorization", authz)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a signature moved to another query: %d", resp.StatusCode)
	}
}

func TestSpoiledAnswersAreRefused(t *testing.T) {
	p := newPair(t, true, wechattest.PayOptions{})
	for how, want := range map[string]error{
		wechattest.PayAnswerBadSignature: reasonBadSignature,
		wechattest.PayAnswerSignTest:     reasonSignTest,
		wechattest.PayAnswerUnsigned:     reasonMissingHeader,
	} {
		p.pay.SpoilNext(how)
		_, h, b := p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
		if err := p.m.VerifyResponse(h, b); err != want || !errors.Is(err, ErrVerification) {
			t.Errorf("%s: %v, want %v", how, err, want)
		}
	}
	_, h, b := p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	if err := p.m.VerifyResponse(h, b); err != nil {
		t.Fatalf("a good answer after the spoiled ones: %v", err)
	}
	// Each header missing in turn, a body changed, an unknown serial.
	for _, name := range []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"} {
		hh := h.Clone()
		hh.Del(name)
		if err := p.m.VerifyResponse(hh, b); err != reasonMissingHeader {
			t.Errorf("without %s: %v", name, err)
		}
	}
	if err := p.m.VerifyResponse(h, append(b, ' ')); err != reasonBadSignature {
		t.Errorf("a byte added to the body: %v", err)
	}
	hh := h.Clone()
	hh.Set("Wechatpay-Serial", "PUB_KEY_ID_0000")
	if err := p.m.VerifyResponse(hh, b); err != reasonUnknownSerial {
		t.Errorf("unknown serial: %v", err)
	}
	hh = h.Clone()
	hh.Set("Wechatpay-Timestamp", "0"+h.Get("Wechatpay-Timestamp"))
	if err := p.m.VerifyResponse(hh, b); err != reasonBadTimestamp {
		t.Errorf("a timestamp with a leading zero: %v", err)
	}
}

func TestCertificatesAndTheMigration(t *testing.T) {
	p := newPair(t, false, wechattest.PayOptions{SignWithCertificate: true})
	_, h, b := p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	if err := p.m.VerifyResponse(h, b); err != reasonUnknownSerial {
		t.Fatalf("before any certificate is fetched: %v", err)
	}
	if err := p.m.RefreshCertificates(t.Context(), nil, p.base); err != nil {
		t.Fatalf("RefreshCertificates: %v", err)
	}
	if got := p.m.CertificateSerials(); len(got) != 1 || got[0] != p.pay.Keys().CertSerial || p.m.WechatpaySerial() != got[0] {
		t.Fatalf("serials %v, Wechatpay-Serial %q; want the fake's %s", got, p.m.WechatpaySerial(), p.pay.Keys().CertSerial)
	}
	_, h, b = p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	if err := p.m.VerifyResponse(h, b); err != nil {
		t.Fatalf("a certificate-signed answer: %v", err)
	}
	// The fake moves to its public key: a certificate-only merchant cannot
	// follow; one configured with both (a migration) accepts either.
	p.pay.SetSignWithCertificate(false)
	_, h, b = p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	if err := p.m.VerifyResponse(h, b); err != reasonUnknownSerial {
		t.Fatalf("certificate-only merchant, public-key answer: %v", err)
	}
	_, keyPEM := merchantKey(t)
	both, err := New(Config{MchID: testMchID, PrivateKey: keyPEM, SerialNo: testSerial, APIv3Key: testAPIKey,
		PublicKeyID: p.pay.Keys().PublicKeyID, PublicKey: p.pay.Keys().PublicKeyPEM})
	if err != nil {
		t.Fatal(err)
	}
	if err := both.RefreshCertificates(t.Context(), p.pay.Client(), "http://pay.invalid"); err != nil {
		t.Fatalf("refresh through the in-process client: %v", err)
	}
	if err := both.VerifyResponse(h, b); err != nil {
		t.Fatalf("migrating merchant, public-key answer: %v", err)
	}
	p.pay.SetSignWithCertificate(true)
	_, h, b = p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	if err := both.VerifyResponse(h, b); err != nil {
		t.Fatalf("migrating merchant, certificate answer: %v", err)
	}
}

func TestRefreshCertificatesRefusesWhatDoesNotCheckOut(t *testing.T) {
	p := newPair(t, false, wechattest.PayOptions{SignWithCertificate: true})
	_, keyPEM := merchantKey(t)
	wrongKey, err := New(Config{MchID: testMchID, PrivateKey: keyPEM, SerialNo: testSerial, APIv3Key: strings.Repeat("x", 32)})
	if err != nil {
		t.Fatal(err)
	}
	err = wrongKey.RefreshCertificates(t.Context(), nil, p.base)
	if !errors.Is(err, ErrVerification) || len(wrongKey.CertificateSerials()) != 0 || strings.Contains(err.Error(), "xxxx") {
		t.Fatalf("another APIv3 key: %v, serials %v", err, wrongKey.CertificateSerials())
	}
	p.pay.SpoilNext(wechattest.PayAnswerBadSignature)
	if err := p.m.RefreshCertificates(t.Context(), nil, p.base); err == nil || len(p.m.CertificateSerials()) != 0 {
		t.Fatalf("a badly signed certificate list was taken: %v", err)
	}
	p.pay.SpoilNext(wechattest.PayAnswerSignTest)
	if err := p.m.RefreshCertificates(t.Context(), nil, p.base); !errors.Is(err, ErrVerification) {
		t.Fatalf("a SIGNTEST certificate list: %v", err)
	}
	if err := p.m.RefreshCertificates(t.Context(), nil, "http://127.0.0.1:1"); err == nil {
		t.Fatal("an unreachable pay_api_base")
	}
}

func TestMarkPaidCallbackVerifiesAndDecryptsWithOurs(t *testing.T) {
	var mu sync.Mutex
	var delivered []byte
	var got *Notification
	var p pair
	notify := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, out, err := p.m.OpenNotification(r.Header, body, time.Now())
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":"FAIL","message":"` + err.Error() + `"}`))
			return
		}
		mu.Lock()
		got, delivered = n, out
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer notify.Close()
	for _, certMode := range []bool{false, true} {
		p = newPair(t, !certMode, wechattest.PayOptions{SignWithCertificate: certMode})
		if certMode {
			if err := p.m.RefreshCertificates(t.Context(), nil, p.base); err != nil {
				t.Fatal(err)
			}
		}
		_, _, b := p.do(t, "POST", "/v3/pay/transactions/jsapi", jsapiOrder("T9", notify.URL))
		var prepay struct {
			PrepayID string `json:"prepay_id"`
		}
		json.Unmarshal(b, &prepay)
		cb, err := p.pay.MarkPaid(prepay.PrepayID)
		if err != nil || cb.Status != http.StatusNoContent {
			t.Fatalf("certificates %v: callback answered %d %s, %v", certMode, cb.Status, cb.Answer, err)
		}
		mu.Lock()
		var d struct {
			ID        string `json:"id"`
			EventType string `json:"event_type"`
			Resource  struct {
				OutTradeNo    string `json:"out_trade_no"`
				TradeState    string `json:"trade_state"`
				TransactionID string `json:"transaction_id"`
			} `json:"resource"`
		}
		if err := json.Unmarshal(delivered, &d); err != nil || d.ID != got.ID || d.EventType != "TRANSACTION.SUCCESS" ||
			d.Resource.OutTradeNo != "T9" || d.Resource.TradeState != "SUCCESS" || d.Resource.TransactionID == "" {
			t.Fatalf("delivered %s", delivered)
		}
		// Outside resource, the delivered body is the callback's bytes.
		sent := string(cb.Body)
		i := strings.Index(sent, `"resource":`) + len(`"resource":`)
		if !strings.HasPrefix(string(delivered), sent[:i]) || !strings.HasSuffix(string(delivered), "}") {
			t.Fatalf("the members before resource changed:\n%s\n%s", sent, delivered)
		}
		mu.Unlock()
	}
}

func TestForgedAndStaleCallbacksAreRefused(t *testing.T) {
	p := newPair(t, true, wechattest.PayOptions{})
	n, err := p.pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", []byte(`{"out_trade_no":"T1"}`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := p.m.OpenNotification(n.Header, n.Body, now); err != nil {
		t.Fatalf("a fresh callback: %v", err)
	}
	// resign signs a changed body with the fake's own key, as only WeChat
	// Pay could: what must then catch it is the decryption.
	resign := func(body []byte) http.Header {
		h := n.Header.Clone()
		ts := strconv.FormatInt(now.Unix(), 10)
		sig, err := wechattest.PaySignRSA(p.pay.Keys().PublicKey, ts+"\n"+h.Get("Wechatpay-Nonce")+"\n"+string(body)+"\n")
		if err != nil {
			t.Fatal(err)
		}
		h.Set("Wechatpay-Timestamp", ts)
		h.Set("Wechatpay-Signature", sig)
		return h
	}
	var env struct {
		Resource wechattest.PayResource `json:"resource"`
	}
	json.Unmarshal(n.Body, &env)
	ct := env.Resource.Ciphertext
	flipped := ct[:10] + "A" + ct[11:]
	if ct[10] == 'A' {
		flipped = ct[:10] + "B" + ct[11:]
	}
	tampered := bytes.Replace(n.Body, []byte(ct), []byte(flipped), 1)
	signtest := n.Header.Clone()
	signtest.Set("Wechatpay-Signature", "WECHATPAY/SIGNTEST/"+n.Header.Get("Wechatpay-Signature"))
	forged := n.Header.Clone()
	forged.Set("Wechatpay-Signature", n.Header.Get("Wechatpay-Signature")[4:]+"AAAA")
	// A header given twice: which one a reader takes is its guess.
	twice := func(name, second string) http.Header {
		h := n.Header.Clone()
		h.Add(name, second)
		return h
	}
	// Signed by WeChat Pay, but its resource is not UTF-8: delivered, it
	// would be JSON no strict reader takes.
	notUTF8, err := p.pay.Notification("TRANSACTION.SUCCESS", "支付成功", "transaction", []byte("{\"out_trade_no\":\"T1\",\"x\":\"\xff\"}"))
	if err != nil {
		t.Fatal(err)
	}
	// Signed too, a member outside the resource that is not UTF-8.
	summaryNotUTF8 := bytes.Replace(n.Body, []byte("支付成功"), []byte("\xff"), 1)
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		"10 minutes old":            {n.Header, n.Body, now.Add(10 * time.Minute), reasonStale},
		"10 minutes early":          {n.Header, n.Body, now.Add(-10 * time.Minute), reasonStale},
		"SIGNTEST probe":            {signtest, n.Body, now, reasonSignTest},
		"bad signature":             {forged, n.Body, now, reasonBadSignature},
		"body changed":              {n.Header, bytes.Replace(n.Body, []byte("支付成功"), []byte("支付失败"), 1), now, reasonBadSignature},
		"tampered, resigned":        {resign(tampered), tampered, now, reasonDecrypt},
		"a second, bogus signature": {twice("Wechatpay-Signature", "AAAA"), n.Body, now, reasonRepeatedHeader},
		"a second timestamp":        {twice("Wechatpay-Timestamp", "1"), n.Body, now, reasonRepeatedHeader},
		"a second serial":           {twice("Wechatpay-Serial", "X"), n.Body, now, reasonRepeatedHeader},
		"resource not UTF-8":        {notUTF8.Header, notUTF8.Body, now, reasonNotJSON},
		"summary not UTF-8":         {resign(summaryNotUTF8), summaryNotUTF8, now, reasonNotification},
	} {
		if _, _, err := p.m.OpenNotification(c.h, c.body, c.now); err != c.want || !errors.Is(err, ErrVerification) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestPaySignVerifiesWithTheMerchantPublicKey(t *testing.T) {
	key, _ := merchantKey(t)
	p := newPair(t, true, wechattest.PayOptions{})
	pay, err := p.m.PaySign("wx1234567890abcdef", "wx201410272009395522657a690389285100", time.Unix(1414488825, 0), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")
	if err != nil {
		t.Fatal(err)
	}
	if pay.TimeStamp != "1414488825" || pay.Package != "prepay_id=wx201410272009395522657a690389285100" || pay.SignType != "RSA" {
		t.Fatalf("payment %+v", pay)
	}
	if !wechattest.VerifyPaySign(&key.PublicKey, pay.AppID, pay.TimeStamp, pay.NonceStr, pay.Package, pay.PaySign) {
		t.Fatal("paySign does not verify with the merchant public key")
	}
	if wechattest.VerifyPaySign(&key.PublicKey, "wxffffffffffffffff", pay.TimeStamp, pay.NonceStr, pay.Package, pay.PaySign) {
		t.Fatal("paySign verifies for another appid")
	}
	b, _ := json.Marshal(pay)
	for _, k := range []string{`"appId"`, `"timeStamp"`, `"nonceStr"`, `"package"`, `"signType"`, `"paySign"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Fatalf("payment JSON %s lacks %s", b, k)
		}
	}
	if _, err := p.m.PaySign("wx1", "id\"x", time.Now(), ""); err == nil {
		t.Fatal("a prepay_id with a quote was signed")
	}
}

func TestVerifyWhileCertificatesRefresh(t *testing.T) {
	p := newPair(t, false, wechattest.PayOptions{SignWithCertificate: true})
	if err := p.m.RefreshCertificates(t.Context(), nil, p.base); err != nil {
		t.Fatal(err)
	}
	_, h, b := p.do(t, "GET", "/v3/pay/transactions/out-trade-no/X?mchid="+testMchID, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if err := p.m.VerifyResponse(h, b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 3 {
		if err := p.m.RefreshCertificates(t.Context(), p.pay.Client(), ""); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}
