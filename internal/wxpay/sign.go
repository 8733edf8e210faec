package wxpay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wechatpay-apiv3/wechatpay-go/core/consts"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// SignRequest returns the Authorization header of an APIv3 request:
//
//	WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"
//
// signed with the merchant private key over METHOD\npath?query\ntimestamp\n
// nonce\nbody\n. pathAndQuery is the request target exactly as sent
// ("/v3/pay/transactions/id/4200…?mchid=1900000001"). An empty nonce is
// replaced by a random one.
func (m *Merchant) SignRequest(method, pathAndQuery string, body []byte, now time.Time, nonce string) (string, error) {
	if method == "" || !allToken(method) {
		return "", errors.New("wxpay: sign request: method is not an HTTP method")
	}
	if len(pathAndQuery) == 0 || pathAndQuery[0] != '/' || !printable(pathAndQuery) {
		return "", errors.New("wxpay: sign request: path is not a request target")
	}
	nonce, err := checkNonce(nonce)
	if err != nil {
		return "", fmt.Errorf("wxpay: sign request: %w", err)
	}
	ts := now.Unix()
	message := method + "\n" + pathAndQuery + "\n" + strconv.FormatInt(ts, 10) + "\n" + nonce + "\n" + string(body) + "\n"
	sig, err := m.signMessage(message)
	if err != nil {
		return "", fmt.Errorf("wxpay: sign request: %w", err)
	}
	return fmt.Sprintf(consts.HeaderAuthorizationFormat, "WECHATPAY2-"+m.signer.Algorithm(),
		m.mchID, nonce, ts, m.serialNo, sig), nil
}

// Payment is the object wx.requestPayment takes for a mini program or JSAPI
// order: spread it into the call as it is.
type Payment struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"`
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// PaySign returns the payment object of a prepay_id for appid, its paySign
// the merchant key's RSA-SHA256 over appId\ntimeStamp\nnonceStr\npackage\n.
// An empty nonce is replaced by a random one.
func (m *Merchant) PaySign(appid, prepayID string, now time.Time, nonce string) (Payment, error) {
	if appid == "" || !allToken(appid) {
		return Payment{}, errors.New("wxpay: pay sign: appid is not an appid")
	}
	if prepayID == "" || !allToken(prepayID) {
		return Payment{}, errors.New("wxpay: pay sign: prepay_id is not a prepay_id")
	}
	nonce, err := checkNonce(nonce)
	if err != nil {
		return Payment{}, fmt.Errorf("wxpay: pay sign: %w", err)
	}
	p := Payment{
		AppID:     appid,
		TimeStamp: strconv.FormatInt(now.Unix(), 10),
		NonceStr:  nonce,
		Package:   "prepay_id=" + prepayID,
		SignType:  "RSA",
	}
	sig, err := m.signMessage(p.AppID + "\n" + p.TimeStamp + "\n" + p.NonceStr + "\n" + p.Package + "\n")
	if err != nil {
		return Payment{}, fmt.Errorf("wxpay: pay sign: %w", err)
	}
	p.PaySign = sig
	return p, nil
}

// signMessage is the SDK signer's base64 RSA-SHA256 (PKCS#1 v1.5) of
// message with the merchant key.
func (m *Merchant) signMessage(message string) (string, error) {
	res, err := m.signer.Sign(context.Background(), message)
	if err != nil {
		return "", errors.New("the merchant key does not sign")
	}
	return res.Signature, nil
}

// checkNonce returns nonce, or a fresh one when empty; a nonce goes into a
// quoted header parameter, so it is letters and digits (and '_', '-') only.
func checkNonce(nonce string) (string, error) {
	if nonce == "" {
		n, err := utils.GenerateNonce()
		if err != nil {
			return "", errors.New("no randomness for a nonce")
		}
		return n, nil
	}
	if len(nonce) > 64 || !allToken(nonce) {
		return "", errors.New("nonce is not 1 to 64 letters and digits")
	}
	return nonce, nil
}

// printable reports whether s is visible ASCII without spaces.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
