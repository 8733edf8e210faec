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
	"strings"
	"sync"
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
	pm, pay := testPayMerchant(t, nil)

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
// Both waits are bounded: before the call (no certificate known yet) and
// after it (the answer names a certificate the merchant does not know,
// one on the public-key scheme meeting a rotated certificate).
func TestPayCallWaitsForCertificatesOnlyUntilItsTimeout(t *testing.T) {
	slowCertificates := func(pay http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v3/certificates" {
				time.Sleep(2 * time.Second)
			}
			pay.ServeHTTP(w, r)
		})
	}
	for _, publicKey := range []bool{false, true} {
		pm, _ := testPayMerchant(t, slowCertificates, publicKey)
		g := &PayGateway{merchant: pm}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		_, _, err := g.call(ctx, http.MethodGet, "/v3/pay/transactions/out-trade-no/T1", "mchid="+testMchID, nil)
		cancel()
		if d := time.Since(start); d > time.Second {
			t.Errorf("public key %v: the call took %v with a 300 ms timeout", publicKey, d)
		}
		if err == nil || errors.Is(err, errPayAnswer) {
			t.Errorf("public key %v: the call without certificates in time: %v, want a timeout, not a refused answer", publicKey, err)
		}
	}
}

// One genuine answer of WeChat Pay, sent again by whoever sits on the way
// to it (its signature binds the answer, not the call), is refused: here
// the answer to the query of order A comes back for order B, then for C
// with its signature spelled otherwise (the bits of the base64 character
// before "==" that the decoder drops).
func TestPayAnswerIsTakenOnce(t *testing.T) {
	var (
		mu      sync.Mutex
		saved   *httptest.ResponseRecorder
		respell bool
	)
	pm, _ := testPayMerchant(t, func(pay http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if saved == nil || r.URL.Path == "/v3/certificates" {
				rec := httptest.NewRecorder()
				pay.ServeHTTP(rec, r)
				if r.URL.Path != "/v3/certificates" {
					saved = rec
				}
				copyAnswer(w, rec, false)
				return
			}
			copyAnswer(w, saved, respell)
		})
	})
	g := &PayGateway{merchant: pm}
	query := func(order string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, err := g.call(ctx, http.MethodGet, "/v3/pay/transactions/out-trade-no/"+order, "mchid="+testMchID, nil)
		return err
	}
	if err := query("A"); err != nil {
		t.Fatalf("the first answer: %v", err)
	}
	if err := query("B"); !errors.Is(err, errPayAnswer) {
		t.Errorf("A's answer sent again for B: %v, want it refused", err)
	}
	mu.Lock()
	respell = true
	mu.Unlock()
	if err := query("C"); !errors.Is(err, errPayAnswer) {
		t.Errorf("A's answer sent again for C, its signature respelled: %v, want it refused", err)
	}
}

// copyAnswer writes rec's answer to w, with its signature's base64
// respelled when respell is set.
func copyAnswer(w http.ResponseWriter, rec *httptest.ResponseRecorder, respell bool) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	if sig := w.Header().Get("Wechatpay-Signature"); respell && strings.HasSuffix(sig, "==") {
		const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		i := len(sig) - 3
		w.Header().Set("Wechatpay-Signature", sig[:i]+string(b64[strings.IndexByte(b64, sig[i])^0x0f])+"==")
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// testPayMerchant is a merchant calling the fake WeChat Pay through wrap
// (nil: as it is), which signs with its platform certificate. Without
// WeChat Pay's public key the merchant knows no certificate before it
// fetches them; with it (publicKey), it calls at once, and fetches them
// when an answer names the certificate's serial.
func testPayMerchant(t *testing.T, wrap func(http.Handler) http.Handler, publicKey ...bool) (*payMerchant, *wechattest.Pay) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pay, err := wechattest.NewPay(wechattest.PayOptions{MchID: testMchID, APIv3Key: testAPIv3Key, MerchantKey: &key.PublicKey, SignWithCertificate: true})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = pay
	if wrap != nil {
		h = wrap(pay)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	c := wxpay.Config{MchID: testMchID, SerialNo: "3775B6A45ACD588826D15E583A95F5DD12345678", APIv3Key: testAPIv3Key,
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	if len(publicKey) > 0 && publicKey[0] {
		c.PublicKeyID, c.PublicKey = pay.Keys().PublicKeyID, pay.Keys().PublicKeyPEM
	}
	m, err := wxpay.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return &payMerchant{Merchant: m, base: srv.URL, client: newPayClient(srv.Client().Transport)}, pay
}

const testMchID, testAPIv3Key = "1900000001", "apiv3-key-for-test-0123456789abc"
