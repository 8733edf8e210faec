package wechatauth

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// TestDecryptCheckedMapsFailures checks the answers /wx/userinfo, /wx/phone
// and /wx/decrypt give for each kind of bad open data.
func TestDecryptCheckedMapsFailures(t *testing.T) {
	v := wechattest.UserInfoVector
	sess := &session.Session{SID: "s1", AppID: v.AppID, OpenID: v.OpenID, SessionKey: v.SessionKey}
	other := &session.Session{SID: "s2", AppID: v.AppID, OpenID: "oSomeoneElse", SessionKey: wechattest.NewSessionKey()}
	otherApp := &session.Session{SID: "s3", AppID: "wxother", OpenID: v.OpenID, SessionKey: v.SessionKey}

	ct := mustB64(t, v.EncryptedData)
	ct[0] ^= 0x01 // the first plaintext block is garbled, the padding intact
	tampered := base64.StdEncoding.EncodeToString(ct)

	sig := wechattest.Sign(`{"nickName":"Band"}`, v.SessionKey)
	// Well-formed JSON objects of this user and app, but not UTF-8 text:
	// no JSON answer can hold them.
	notUTF8, notUTF8IV, err := wechattest.Encrypt(v.SessionKey, []byte("{\"nickName\":\"\xff\xfe\",\"watermark\":{\"appid\":\""+v.AppID+"\"}}"))
	if err != nil {
		t.Fatal(err)
	}
	cutRune, cutRuneIV, err := wechattest.Encrypt(v.SessionKey, []byte("{\"nickName\":\"\xe9\x80\"}"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    apierr.Fields
		s    *session.Session
		want *apierr.Error
	}{
		{"published vector", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV}, sess, nil},
		{"published vector with a good signature", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: `{"nickName":"Band"}`, Signature: sig}, sess, nil},
		{"missing encryptedData", apierr.Fields{IV: v.IV}, sess, apierr.InvalidRequest},
		{"missing iv", apierr.Fields{EncryptedData: v.EncryptedData}, sess, apierr.InvalidRequest},
		{"rawData without signature", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: "{}"}, sess, apierr.InvalidRequest},
		{"signature without rawData", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV, Signature: sig}, sess, apierr.InvalidRequest},
		{"bad base64", apierr.Fields{EncryptedData: "%%%", IV: v.IV}, sess, apierr.InvalidRequest},
		{"tampered first block", apierr.Fields{EncryptedData: tampered, IV: v.IV}, sess, apierr.DecryptFailed},
		{"short iv", apierr.Fields{EncryptedData: v.EncryptedData, IV: "AAAAAAAAAAAAAAAAAAAA"}, sess, apierr.DecryptFailed},
		{"partial block", apierr.Fields{EncryptedData: v.EncryptedData[:len(v.EncryptedData)-8], IV: v.IV}, sess, apierr.DecryptFailed},
		{"another user's session", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV}, other, apierr.DecryptFailed},
		{"another app's session with the same key", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV}, otherApp, apierr.WatermarkMismatch},
		{"plaintext not UTF-8", apierr.Fields{EncryptedData: notUTF8, IV: notUTF8IV}, sess, apierr.DecryptFailed},
		{"plaintext with a cut UTF-8 sequence", apierr.Fields{EncryptedData: cutRune, IV: cutRuneIV}, sess, apierr.DecryptFailed},
		{"signature mismatch", apierr.Fields{EncryptedData: v.EncryptedData, IV: v.IV, RawData: `{"nickName":"Eve"}`, Signature: sig}, sess, apierr.SignatureMismatch},
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
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want %s", err, tt.want.Code())
			}
			if ae.Code() != tt.want.Code() || ae.Status() != tt.want.Status() {
				t.Fatalf("answer %d %s, want %d %s", ae.Status(), ae.Code(), tt.want.Status(), tt.want.Code())
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
