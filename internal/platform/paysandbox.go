package platform

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// paySandboxes holds the fake WeChat Pay of each sandbox merchant, by
// mch_id, so that its keys and orders outlive a reload and every handler
// of the process (wechat_pay, wechat_pay_notify, the sandbox pay route)
// talks to the same fake.
var paySandboxes = caddy.NewUsagePool()

// PaySandbox is a sandbox merchant: the keys a merchant console would
// give, generated, and the fake WeChat Pay that knows them.
type PaySandbox struct {
	Pay           *wechattest.Pay
	PrivateKeyPEM string // the merchant API key, PKCS#8
	SerialNo      string
	APIv3Key      string
}

func (*PaySandbox) Destruct() error { return nil }

// OpenPaySandbox returns the sandbox merchant of mchID, made on first use;
// ReleasePaySandbox gives the hold back.
func OpenPaySandbox(mchID string) (*PaySandbox, error) {
	val, _, err := paySandboxes.LoadOrNew(mchID, func() (caddy.Destructor, error) {
		return newPaySandbox(mchID)
	})
	if err != nil {
		return nil, err
	}
	return val.(*PaySandbox), nil
}

// ReleasePaySandbox gives back a hold of OpenPaySandbox.
func ReleasePaySandbox(mchID string) { paySandboxes.Delete(mchID) }

func newPaySandbox(mchID string) (*PaySandbox, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	var serial [20]byte
	var apiKey [16]byte
	rand.Read(serial[:])
	rand.Read(apiKey[:])
	s := &PaySandbox{
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		SerialNo:      fmt.Sprintf("%X", serial[:]),
		APIv3Key:      fmt.Sprintf("%x", apiKey[:]), // 32 characters
	}
	s.Pay, err = wechattest.NewPay(wechattest.PayOptions{
		MchID: mchID, APIv3Key: s.APIv3Key, MerchantKey: &key.PublicKey, MerchantSerial: s.SerialNo,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}
