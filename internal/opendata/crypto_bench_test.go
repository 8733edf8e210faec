package opendata

import (
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// BenchmarkDecryptUserInfo is what /wx/userinfo does with WeChat's
// published 400-byte user-info vector: base64, AES-CBC, PKCS#7, then the
// plaintext checked to be one JSON object whose watermark and openId are
// this app's and this user's. bench/compare runs silenceper/wechat's
// encryptor on the same input.
func BenchmarkDecryptUserInfo(b *testing.B) {
	v := wechattest.UserInfoVector
	b.ReportAllocs()
	b.SetBytes(int64(len(v.Plaintext)))
	for b.Loop() {
		plain, err := Decrypt(v.SessionKey, v.EncryptedData, v.IV)
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckOwner(plain, v.AppID, v.OpenID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckOwner is the JSON part of it alone.
func BenchmarkCheckOwner(b *testing.B) {
	v := wechattest.UserInfoVector
	plain := []byte(v.Plaintext)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		if err := CheckOwner(plain, v.AppID, v.OpenID); err != nil {
			b.Fatal(err)
		}
	}
}
