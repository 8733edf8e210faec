package wechatauth

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// TestDecryptCheckedMapsFailures checks the answers /wx/userinfo, /wx/phone
// and /wx/decrypt give for each kind of bad open data.
func TestDecryptCheckedMapsFailures(t *testing.T) {
	v := wechattest.UserInfoVector
	sess := &Session{SID: "s1", AppID: v.AppID, OpenID: v.OpenID, SessionKey: v.SessionKey}
	other := &Session{SID: "s2", AppID: v.AppID, OpenID: "oSomeoneElse", SessionKey: wechattest.NewSessionKey()}
	otherApp := &Session{SID: "s3", AppID: "wxother", OpenID: v.OpenID, SessionKey: v.SessionKey}

	ct := mustB64(t, v.EncryptedData)
	ct[0] ^= 0x01 // the first plaintext block is garbled, the padding intact
	tampered := base64.StdEncoding.EncodeToString(ct)

	sig := wechattest.Sign(`{"nickName":"Band"}`, v.SessionKey)
	tests := []struct {
		name string
		f    fields
		s    *Session
		want *apiError
	}{
		{"published vector", fields{EncryptedData: v.EncryptedData, IV: v.IV}, sess, nil},
		{"published vector with a good signature", fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: `{"nickName":"Band"}`, Signature: sig}, sess, nil},
		{"missing encryptedData", fields{IV: v.IV}, sess, errInvalidRequest},
		{"missing iv", fields{EncryptedData: v.EncryptedData}, sess, errInvalidRequest},
		{"rawData without signature", fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: "{}"}, sess, errInvalidRequest},
		{"signature without rawData", fields{EncryptedData: v.EncryptedData, IV: v.IV, Signature: sig}, sess, errInvalidRequest},
		{"bad base64", fields{EncryptedData: "%%%", IV: v.IV}, sess, errInvalidRequest},
		{"tampered first block", fields{EncryptedData: tampered, IV: v.IV}, sess, errDecryptFailed},
		{"short iv", fields{EncryptedData: v.EncryptedData, IV: "AAAAAAAAAAAAAAAAAAAA"}, sess, errDecryptFailed},
		{"partial block", fields{EncryptedData: v.EncryptedData[:len(v.EncryptedData)-8], IV: v.IV}, sess, errDecryptFailed},
		{"another user's session", fields{EncryptedData: v.EncryptedData, IV: v.IV}, other, errDecryptFailed},
		{"another app's session with the same key", fields{EncryptedData: v.EncryptedData, IV: v.IV}, otherApp, errWatermarkMismatch},
		{"signature mismatch", fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: `{"nickName":"Eve"}`, Signature: sig}, sess, errSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			plain, err := decryptChecked(&f, tt.s)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if string(plain) != v.Plaintext {
					t.Fatalf("plaintext %s", plain)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want %s", err, tt.want.code)
			}
			if ae.code != tt.want.code || ae.status != tt.want.status {
				t.Fatalf("answer %d %s, want %d %s", ae.status, ae.code, tt.want.status, tt.want.code)
			}
			if plain != nil {
				t.Fatalf("plaintext returned with an error")
			}
		})
	}
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
