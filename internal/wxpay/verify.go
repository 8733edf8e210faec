package wxpay

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
)

// MaxSkew is how far a Wechatpay-Timestamp may be from now.
const MaxSkew = consts.FiveMinute * time.Second

const signTestPrefix = "WECHATPAY/SIGNTEST/"

// VerifyResponse checks the signature of an answer from WeChat Pay over
// its Wechatpay-Timestamp, -Nonce and body, with the public key or the
// platform certificate its Wechatpay-Serial names. It refuses, with an
// ErrVerification, a missing header, a WECHATPAY/SIGNTEST/ probe, an
// unknown serial, a timestamp 5 minutes or more from the current time, and
// a signature that does not verify.
func (m *Merchant) VerifyResponse(header http.Header, body []byte) error {
	return m.verify(header, body, time.Now())
}

// VerifyNotification checks a callback from WeChat Pay as VerifyResponse
// checks an answer, with now as the current time.
func (m *Merchant) VerifyNotification(header http.Header, body []byte, now time.Time) error {
	return m.verify(header, body, now)
}

// signedHeaders are the headers a signature check reads: each is given
// once, or which of two a reader takes is its guess.
var signedHeaders = [...]string{consts.WechatPayTimestamp, consts.WechatPayNonce, consts.WechatPaySignature, consts.WechatPaySerial, "Wechatpay-Signature-Type"}

func (m *Merchant) verify(header http.Header, body []byte, now time.Time) error {
	for _, name := range signedHeaders {
		if len(header.Values(name)) > 1 {
			return reasonRepeatedHeader
		}
	}
	ts := strings.TrimSpace(header.Get(consts.WechatPayTimestamp))
	nonce := strings.TrimSpace(header.Get(consts.WechatPayNonce))
	sig := strings.TrimSpace(header.Get(consts.WechatPaySignature))
	serial := strings.TrimSpace(header.Get(consts.WechatPaySerial))
	if ts == "" || nonce == "" || sig == "" || serial == "" {
		return reasonMissingHeader
	}
	if t := header.Get("Wechatpay-Signature-Type"); t != "" && t != "WECHATPAY2-SHA256-RSA2048" {
		return reasonSignatureType
	}
	if strings.HasPrefix(sig, signTestPrefix) {
		return reasonSignTest
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix < 0 || strconv.FormatInt(unix, 10) != ts {
		return reasonBadTimestamp
	}
	if d := now.Sub(time.Unix(unix, 0)); d >= MaxSkew || d <= -MaxSkew {
		return reasonStale
	}
	var v auth.Verifier
	switch {
	case m.publicKey != nil && serial == m.publicKeyID:
		v = m.publicKey
	case m.certs.has(serial):
		v = m.certVerify
	default:
		return reasonUnknownSerial
	}
	if v.Verify(context.Background(), serial, ts+"\n"+nonce+"\n"+string(body)+"\n", sig) != nil {
		return reasonBadSignature
	}
	return nil
}
