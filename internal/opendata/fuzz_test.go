package opendata

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// A fuzz target of the package; see the root package's fuzz_test.go for
// how to fuzz longer. Its seed corpus is under testdata/fuzz/.

func FuzzDecryptOpenData(f *testing.F) {
	v := wechattest.UserInfoVector
	f.Add(v.SessionKey, v.EncryptedData, v.IV)
	f.Fuzz(func(t *testing.T, sessionKey, data, iv string) {
		plain, err := Decrypt(sessionKey, data, iv)
		if err != nil {
			if plain != nil {
				t.Fatalf("plaintext returned with error %v", err)
			}
			if !errors.Is(err, ErrBadBase64) && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is neither ErrBadBase64 nor ErrDecrypt", err)
			}
			return
		}
		ct, _ := base64.StdEncoding.DecodeString(data)
		if pad := len(ct) - len(plain); pad < 1 || pad > 16 {
			t.Fatalf("%d bytes of ciphertext gave %d of plaintext", len(ct), len(plain))
		}
		switch err := CheckOwner(plain, v.AppID, v.OpenID); {
		case err == nil, errors.Is(err, ErrDecrypt), errors.Is(err, ErrForeignData):
		default:
			t.Fatalf("CheckOwner: unexpected error %v", err)
		}
	})
}
