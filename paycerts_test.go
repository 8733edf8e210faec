package wechatauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/internal/wxpay"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// Anyone can post a notification naming a Wechatpay-Serial the merchant
// does not know, which has the platform certificates fetched (at most once
// a minute). A poster that hangs up at once must not cut that fetch short:
// the minute would pass with no certificate fetched, and every genuine
// notification and answer signed with a rotated certificate would be
// refused meanwhile.
func TestPayCertificateFetchOutlivesACallerHangingUp(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const mchID, apiKey = "1900000001", "apiv3-key-for-test-0123456789abc"
	pay, err := wechattest.NewPay(wechattest.PayOptions{MchID: mchID, APIv3Key: apiKey, MerchantKey: &key.PublicKey, SignWithCertificate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pay)
	t.Cleanup(srv.Close)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	// No public key: the merchant verifies with platform certificates only.
	m, err := wxpay.New(wxpay.Config{MchID: mchID, SerialNo: "3775B6A45ACD588826D15E583A95F5DD12345678", APIv3Key: apiKey,
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	pm := &payMerchant{Merchant: m, base: srv.URL, client: newPayClient(srv.Client().Transport)}

	body := `{"id":"EV-1","event_type":"TRANSACTION.SUCCESS"}`
	now := time.Now()
	ts, nonce := strconv.FormatInt(now.Unix(), 10), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
	sig, err := wechattest.PaySignRSA(pay.Keys().CertKey, ts+"\n"+nonce+"\n"+body+"\n")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", sig)
	h.Set("Wechatpay-Serial", pay.Keys().CertSerial)

	gone, hangUp := context.WithCancel(context.Background())
	hangUp()
	pm.verifyAnswer(gone, h, []byte(`{"id":"forged"}`), now)

	if err := pm.verifyAnswer(context.Background(), h, []byte(body), now); err != nil {
		t.Fatalf("a notification signed with the platform certificate is refused after a caller hung up during the fetch: %v", err)
	}
}

// A call waits for the platform certificates no longer than its own
// timeout: WeChat Pay slow to hand them out makes the call fail for lack
// of time (503 wechat_unavailable), not late and not as a bad signature.
func TestPayCallWaitsForCertificatesOnlyUntilItsTimeout(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const mchID, apiKey = "1900000001", "apiv3-key-for-test-0123456789abc"
	pay, err := wechattest.NewPay(wechattest.PayOptions{MchID: mchID, APIv3Key: apiKey, MerchantKey: &key.PublicKey, SignWithCertificate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v3/certificates" {
			time.Sleep(2 * time.Second)
		}
		pay.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	m, err := wxpay.New(wxpay.Config{MchID: mchID, SerialNo: "3775B6A45ACD588826D15E583A95F5DD12345678", APIv3Key: apiKey,
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	g := &PayGateway{merchant: &payMerchant{Merchant: m, base: srv.URL, client: newPayClient(srv.Client().Transport)}}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = g.call(ctx, http.MethodGet, "/v3/pay/transactions/out-trade-no/T1", "mchid="+mchID, nil)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the call took %v with a 300 ms timeout", d)
	}
	if err == nil || errors.Is(err, errPayAnswer) {
		t.Errorf("the call without certificates in time: %v, want a timeout, not a refused answer", err)
	}
}
