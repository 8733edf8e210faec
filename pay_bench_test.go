package wechatauth

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-wechat/wechatauth/internal/metrics"
	"github.com/caddy-wechat/wechatauth/internal/wxpay"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// The acceptance for wechat_pay: a signed forward through ServeHTTP costs
// at most 1.2× one RSA-2048 signature + one verification + a bare proxy
// hop. BenchmarkPayForwardRatio times the three in each iteration, so that
// load from other processes falls on all alike:
//
//	go test -run '^$' -bench PayForward -benchtime 200x -count 3 .

const (
	benchRefund       = `{"out_trade_no":"T20261205000001","out_refund_no":"R20261205000001","reason":"size","amount":{"refund":1,"total":1,"currency":"CNY"}}`
	benchRefundAnswer = `{"refund_id":"50000000382019052709732678859","out_refund_no":"R20261205000001","status":"PROCESSING","amount":{"refund":1,"total":1,"currency":"CNY"}}`
)

type payBench struct {
	g      *PayGateway
	up     *httptest.Server
	key    *rsa.PrivateKey // the merchant's
	pub    *rsa.PublicKey  // WeChat Pay's
	header http.Header     // the answer's signed headers
}

func newPayBench(b testing.TB) *payBench {
	b.Helper()
	if err := metrics.Init(nil); err != nil {
		b.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	const mchID, apiKey, serial = "1900000001", "apiv3-key-for-bench-0123456789ab", "3775B6A45ACD588826D15E583A95F5DD12345678"
	pay, err := wechattest.NewPay(wechattest.PayOptions{MchID: mchID, APIv3Key: apiKey, MerchantKey: &key.PublicKey})
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	m, err := wxpay.New(wxpay.Config{MchID: mchID, SerialNo: serial, APIv3Key: apiKey,
		PrivateKey:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		PublicKeyID: pay.Keys().PublicKeyID, PublicKey: pay.Keys().PublicKeyPEM})
	if err != nil {
		b.Fatal(err)
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "593BEC0C930BF1AFEB40B4A08C8FB242"
	sig, err := wechattest.PaySignRSA(pay.Keys().PublicKey, ts+"\n"+nonce+"\n"+benchRefundAnswer+"\n")
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", sig)
	h.Set("Wechatpay-Serial", pay.Keys().PublicKeyID)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for k, v := range h {
			w.Header()[k] = v
		}
		io.WriteString(w, benchRefundAnswer)
	}))
	b.Cleanup(up.Close)
	g := &PayGateway{Allow: []string{"/v3/refund/domestic/refunds"}, Timeout: 5e9, logger: zap.NewNop(),
		merchant: &payMerchant{Merchant: m, base: up.URL, client: up.Client()}}
	if err := g.checkAllow(); err != nil {
		b.Fatal(err)
	}
	return &payBench{g: g, up: up, key: key, pub: &pay.Keys().PublicKey.PublicKey, header: h}
}

// bare is the hop a plain reverse proxy makes: the request on, the answer
// back.
func (p *payBench) bare(b *testing.B) {
	resp, err := p.up.Client().Post(p.up.URL+"/v3/refund/domestic/refunds", "application/json", bytes.NewReader([]byte(benchRefund)))
	if err != nil {
		b.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
}

// raw is one RSA-2048 signature of the request and one verification of
// the answer, with crypto/rsa directly.
func (p *payBench) raw(b *testing.B) {
	h := sha256.Sum256([]byte("POST\n/v3/refund/domestic/refunds\n1733300000\n593BEC0C930BF1AFEB40B4A08C8FB242\n" + benchRefund + "\n"))
	if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, h[:]); err != nil {
		b.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(p.header.Get("Wechatpay-Signature"))
	h = sha256.Sum256([]byte(p.header.Get("Wechatpay-Timestamp") + "\n" + p.header.Get("Wechatpay-Nonce") + "\n" + benchRefundAnswer + "\n"))
	if err := rsa.VerifyPKCS1v15(p.pub, crypto.SHA256, h[:], sig); err != nil {
		b.Fatal(err)
	}
}

// forward is one call through wechat_pay's ServeHTTP.
func (p *payBench) forward(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/v3/refund/domestic/refunds", bytes.NewReader([]byte(benchRefund)))
	r.Header.Set("Content-Type", "application/json")
	w := newDiscardWriter()
	p.g.ServeHTTP(w, r, nil)
	if w.status != http.StatusOK {
		b.Fatalf("status %d: %s", w.status, w.body)
	}
}

// BenchmarkPayForwardRatio reports forward/(bare+raw); the acceptance
// wants at most 1.2.
func BenchmarkPayForwardRatio(b *testing.B) {
	p := newPayBench(b)
	var bare, raw, fwd time.Duration
	for b.Loop() {
		t0 := time.Now()
		p.bare(b)
		t1 := time.Now()
		p.raw(b)
		t2 := time.Now()
		p.forward(b)
		t3 := time.Now()
		bare, raw, fwd = bare+t1.Sub(t0), raw+t2.Sub(t1), fwd+t3.Sub(t2)
	}
	b.ReportMetric(float64(fwd)/float64(bare+raw), "forward/(bare+raw)")
	b.ReportMetric(float64(bare)/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(raw)/float64(b.N), "raw-ns/op")
	b.ReportMetric(float64(fwd)/float64(b.N), "forward-ns/op")
}

// BenchmarkPayForward, BenchmarkPayBareHop and BenchmarkPayRawCrypto are
// the three apart, for benchstat.
func BenchmarkPayForward(b *testing.B) {
	p := newPayBench(b)
	b.ReportAllocs()
	for b.Loop() {
		p.forward(b)
	}
}

func BenchmarkPayBareHop(b *testing.B) {
	p := newPayBench(b)
	b.ReportAllocs()
	for b.Loop() {
		p.bare(b)
	}
}

func BenchmarkPayRawCrypto(b *testing.B) {
	p := newPayBench(b)
	b.ReportAllocs()
	for b.Loop() {
		p.raw(b)
	}
}
