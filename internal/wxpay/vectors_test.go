package wxpay

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The vectors below are published with WeChat Pay's official Go SDK,
// github.com/wechatpay-apiv3/wechatpay-go v0.2.21; each names the file it
// comes from. The SDK's tests write the private key as "TESTING KEY" so
// that scanners do not flag it; it is a test key of the SDK, not a secret.

// From utils/sign_test.go and core/auth/signers/sha256withrsa_signer_test.go.
const sdkPrivateKey = `-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END TESTING KEY-----`

// The SDK's signature of "source" under sdkPrivateKey (utils/sign_test.go),
// which its verifier tests check with the public key and the certificate
// below (core/auth/verifiers/sha256withrsa_pubkey_verifier_test.go,
// sha256withrsa_verifier_test.go).
const sdkSignatureOfSource = "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoV" +
	"z+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLl" +
	"i/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj" +
	"1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="

// From core/auth/verifiers/sha256withrsa_pubkey_verifier_test.go.
const sdkPublicKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2VCTd91fnUn73Xy9DLvt
/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXagHQ4vGeZN0yqm++rDsGK+
U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOmDeJf2vg6byms9RUipiq4
SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B834uxl1zNLYQCrkdBzb8oU
xwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGfy8wus7hwKz6clt3Whmmd
a7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtkaSef4FdEEgEXJiw0VAJT
8wIDAQAB
-----END PUBLIC KEY-----`

// From core/notify/notify_test.go (TestHandler_ParseNotifyRequest): a
// complete callback as WeChat Pay sent it on 2021-06-24, signed with the
// platform certificate D7CE59D1F522D701, its resource encrypted with the
// SDK's test key "testMchAPIv3Key0". (That key is 16 bytes, so AES-128 runs
// under the AEAD_AES_256_GCM name; a merchant's real APIv3 key is 32.)
const (
	sdk2021Certificate = `-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
-----END CERTIFICATE-----`
	sdk2021APIv3Key  = "testMchAPIv3Key0"
	sdk2021Time      = 1624523846
	sdk2021Body      = `{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}`
	sdk2021Plaintext = `{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}`
)

func sdk2021Header() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Wechatpay-Nonce", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz")
	h.Set("Wechatpay-Timestamp", "1624523846")
	h.Set("Wechatpay-Serial", "D7CE59D1F522D701")
	h.Set("Wechatpay-Signature", "tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXF"+
		"lbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1I"+
		"BLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY4"+
		"06ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==")
	return h
}

// sdkMerchant is a merchant of the SDK's test key that knows the 2021
// platform certificate and the SDK's public key (as PUB_KEY_ID_TEST), with
// the SDK's 16-byte APIv3 test key set past New's 32-byte check.
func sdkMerchant(t *testing.T) *Merchant {
	t.Helper()
	m, err := New(Config{
		MchID:                "1234567890",
		PrivateKey:           strings.ReplaceAll(sdkPrivateKey, "TESTING KEY", "PRIVATE KEY"),
		SerialNo:             "F5765756002FDD77",
		APIv3Key:             strings.Repeat("k", 32),
		PublicKeyID:          "PUB_KEY_ID_TEST",
		PublicKey:            sdkPublicKey,
		PlatformCertificates: []string{sdk2021Certificate},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.apiV3Key = sdk2021APIv3Key
	return m
}

func TestSDKSignatureVector(t *testing.T) {
	m := sdkMerchant(t)
	sig, err := m.signMessage("source")
	if err != nil || sig != sdkSignatureOfSource {
		t.Fatalf("signature of \"source\" = %q, %v; want the SDK's", sig, err)
	}
	// The same signature verifies with the SDK's public key, by its id.
	if err := m.publicKey.Verify(t.Context(), "PUB_KEY_ID_TEST", "source", sdkSignatureOfSource); err != nil {
		t.Fatalf("the SDK's public key refuses its signature: %v", err)
	}
}

func TestSDKCallbackVectorVerifiesDecryptsAndRewrites(t *testing.T) {
	m := sdkMerchant(t)
	at := time.Unix(sdk2021Time, 0)
	n, out, err := m.OpenNotification(sdk2021Header(), []byte(sdk2021Body), at)
	if err != nil {
		t.Fatalf("the SDK's callback, at its own time: %v", err)
	}
	if n.ID != "3119dfba-e649-5eec-ab1e-3412bc4d2e17" || n.EventType != "PAYSCORE.USER_OPEN_SERVICE" ||
		n.Summary != "签约成功" || n.Resource.OriginalType != "payscore" {
		t.Fatalf("read %+v", n)
	}
	want := strings.Replace(sdk2021Body, sdk2021Body[strings.Index(sdk2021Body, `{"original_type"`):len(sdk2021Body)-1], sdk2021Plaintext, 1)
	if string(out) != want {
		t.Fatalf("rewritten:\n%s\nwant\n%s", out, want)
	}
	// One byte of the body changed: the signature no longer covers it.
	tampered := strings.Replace(sdk2021Body, "签约成功", "签约失败", 1)
	if err := m.VerifyNotification(sdk2021Header(), []byte(tampered), at); !errors.Is(err, ErrVerification) {
		t.Fatalf("tampered body: %v", err)
	}
}

func TestSDK2021CallbackReplayedNowIsStale(t *testing.T) {
	m := sdkMerchant(t)
	err := m.VerifyNotification(sdk2021Header(), []byte(sdk2021Body), time.Now())
	if !errors.Is(err, ErrVerification) || err != reasonStale {
		t.Fatalf("WeChat's 2021 callback replayed now: %v, want stale", err)
	}
	if _, _, err := m.OpenNotification(sdk2021Header(), []byte(sdk2021Body), time.Now()); err != reasonStale {
		t.Fatalf("OpenNotification of the replay: %v", err)
	}
	// Five minutes less a second after it was sent it still counts; five
	// minutes after, it does not (the SDK's bound).
	at := time.Unix(sdk2021Time, 0)
	if err := m.VerifyNotification(sdk2021Header(), []byte(sdk2021Body), at.Add(MaxSkew-time.Second)); err != nil {
		t.Fatalf("4m59s later: %v", err)
	}
	if err := m.VerifyNotification(sdk2021Header(), []byte(sdk2021Body), at.Add(MaxSkew)); err != reasonStale {
		t.Fatalf("5m later: %v", err)
	}
	if err := m.VerifyNotification(sdk2021Header(), []byte(sdk2021Body), at.Add(-MaxSkew)); err != reasonStale {
		t.Fatalf("5m early: %v", err)
	}
}

// WeChat Pay's documented example of a payment callback (the "支付成功结果
// 通知" example of https://pay.weixin.qq.com/docs/merchant/apis/
// h5-payment/payment-notice.html) comes with no signature: replayed, with
// or without made-up headers, it is refused.
func TestDocumentedExampleCallbackIsRefused(t *testing.T) {
	const body = `{
    "id": "EV-2018022511223320873",
    "create_time": "2015-05-20T13:29:35+08:00",
    "resource_type": "encrypt-resource",
    "event_type": "TRANSACTION.SUCCESS",
    "summary": "支付成功",
    "resource": {
        "original_type": "transaction",
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": "",
        "associated_data": "",
        "nonce": ""
    }
}`
	m := sdkMerchant(t)
	if _, _, err := m.OpenNotification(http.Header{}, []byte(body), time.Now()); err != reasonMissingHeader {
		t.Fatalf("no headers: %v", err)
	}
	h := sdk2021Header()
	h.Set("Wechatpay-Timestamp", "1432099775") // its create_time
	if _, _, err := m.OpenNotification(h, []byte(body), time.Now()); err != reasonStale {
		t.Fatalf("its own time: %v", err)
	}
	n, err := ParseNotification([]byte(body))
	if err != nil || n.ID != "EV-2018022511223320873" || n.EventType != "TRANSACTION.SUCCESS" {
		t.Fatalf("parse: %+v %v", n, err)
	}
	if _, err := m.DecryptResource(n.Resource); !errors.Is(err, ErrVerification) {
		t.Fatalf("its empty resource decrypts: %v", err)
	}
}

// From utils/aes_test.go (TestDecryptAes256Gcm): its success case and its
// failures.
func TestSDKAESGCMVector(t *testing.T) {
	const key = "testAPIv3Key0000"
	ok := Resource{Algorithm: "AEAD_AES_256_GCM", Ciphertext: "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC",
		AssociatedData: "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8", Nonce: "wCq51qZv4Yfg"}
	pt, err := decryptResource(key, ok)
	if err != nil || string(pt) != "Hello World" {
		t.Fatalf("decrypt = %q, %v; want Hello World", pt, err)
	}
	bad := func(f func(*Resource)) Resource { r := ok; f(&r); return r }
	for name, c := range map[string]struct {
		key string
		r   Resource
	}{
		"invalid base64 ciphertext": {key, bad(func(r *Resource) { r.Ciphertext = "invalid cipher" })},
		"invalid ciphertext":        {key, bad(func(r *Resource) { r.Ciphertext = "SGVsbG8gV29ybGQK" })},
		"invalid aes key":           {"not a aes key", ok},
		"wrong aes key":             {"testAPIv3Key1111", ok},
		"other associated data":     {key, bad(func(r *Resource) { r.AssociatedData = "transaction" })},
		"short nonce":               {key, bad(func(r *Resource) { r.Nonce = "wCq51qZv4Yf" })},
		"empty nonce":               {key, bad(func(r *Resource) { r.Nonce = "" })},
		"other algorithm":           {key, bad(func(r *Resource) { r.Algorithm = "AEAD_SM4_GCM" })},
	} {
		if _, err := decryptResource(c.key, c.r); !errors.Is(err, ErrVerification) {
			t.Errorf("%s: %v, want a verification failure", name, err)
		}
	}
}
