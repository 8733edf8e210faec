package compare

import (
	"testing"

	"github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/miniprogram/context"
	"github.com/silenceper/wechat/v2/miniprogram/encryptor"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func newEncryptor() *encryptor.Encryptor {
	return encryptor.NewEncryptor(&context.Context{Config: &config.Config{AppID: wechattest.UserInfoVector.AppID}})
}

// TestSilenceperDecryptsTheVector makes sure the benchmark measures a
// successful decryption.
func TestSilenceperDecryptsTheVector(t *testing.T) {
	v := wechattest.UserInfoVector
	d, err := newEncryptor().Decrypt(v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatal(err)
	}
	if d.OpenID != v.OpenID || d.Watermark.AppID != v.AppID {
		t.Fatalf("decrypted openId %q, appid %q", d.OpenID, d.Watermark.AppID)
	}
}

// BenchmarkDecryptUserInfo is silenceper's Decrypt on WeChat's published
// user-info vector: base64, AES-CBC, PKCS#7, json.Unmarshal into its
// PlainData struct, and the watermark's appid checked (it does not check
// the openId). Named as wechat_auth's benchmark of the same work.
func BenchmarkDecryptUserInfo(b *testing.B) {
	v := wechattest.UserInfoVector
	e := newEncryptor()
	b.ReportAllocs()
	b.SetBytes(int64(len(v.Plaintext)))
	for b.Loop() {
		if _, err := e.Decrypt(v.SessionKey, v.EncryptedData, v.IV); err != nil {
			b.Fatal(err)
		}
	}
}
