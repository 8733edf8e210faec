// Package wxpay is the merchant side of WeChat Pay APIv3: it signs requests,
// verifies the signatures of answers and callbacks (WeChat Pay public key or
// platform certificates, both during a migration), decrypts callback
// resources, and signs the payment parameters of wx.requestPayment. The
// crypto is the official SDK's (github.com/wechatpay-apiv3/wechatpay-go);
// this package holds the keys, picks the verifier by serial, and never logs.
package wxpay
