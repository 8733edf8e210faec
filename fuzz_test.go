package wechatauth

// Fuzz targets for the parsers that read what a client sends: encrypted
// open data, request bodies and tokens. Each lives with its package, its
// seed corpus under that package's testdata/fuzz/, run with every
// `go test`; to fuzz longer:
//
//	go test -run '^$' -fuzz FuzzDecryptChecked -fuzztime 10m .
//
// (one target at a time; also FuzzDecryptOpenData in ./internal/opendata,
// FuzzParseFields in ./internal/apierr, FuzzVerifyToken in
// ./internal/token). A failing input is written to testdata/fuzz/FuzzXxx/
// and then runs with every `go test` until fixed.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

// FuzzDecryptChecked encrypts what the fuzzer gives, as WeChat would, and
// runs every check /wx/userinfo makes: whatever the plaintext, the answer is
// the plaintext itself or a 4xx.
func FuzzDecryptChecked(f *testing.F) {
	v := wechattest.UserInfoVector
	f.Add([]byte(v.Plaintext), "", "")
	f.Fuzz(func(t *testing.T, plain []byte, rawData, signature string) {
		data, iv, err := wechattest.Encrypt(v.SessionKey, plain)
		if err != nil {
			t.Fatal(err)
		}
		s := &session.Session{SID: "s", AppID: v.AppID, OpenID: v.OpenID, SessionKey: v.SessionKey}
		got, err := decryptChecked(&apierr.Fields{EncryptedData: data, IV: iv, RawData: rawData, Signature: signature}, s)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status() < 400 || ae.Status() > 499 {
				t.Fatalf("error %v is not a 4xx answer", err)
			}
			return
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("decrypted %q, encrypted %q", got, plain)
		}
		if trimmed := bytes.TrimLeft(plain, " \t\r\n"); !json.Valid(plain) || len(trimmed) == 0 || trimmed[0] != '{' {
			t.Fatalf("accepted %q, which is not a JSON object", plain)
		}
		// encoding/json is the reference for whose data it is.
		var o struct {
			OpenID    *string `json:"openId"`
			Watermark *struct {
				AppID string `json:"appid"`
			} `json:"watermark"`
		}
		if err := json.Unmarshal(plain, &o); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", plain, err)
		}
		if o.Watermark != nil && o.Watermark.AppID != v.AppID || o.OpenID != nil && *o.OpenID != v.OpenID {
			t.Fatalf("accepted %q, which belongs to another app or user", plain)
		}
		if signature != "" && !strings.EqualFold(signature, wechattest.Sign(rawData, v.SessionKey)) {
			t.Fatalf("accepted signature %q for rawData %q", signature, rawData)
		}
		if (rawData == "") != (signature == "") {
			t.Fatalf("accepted rawData %q with signature %q", rawData, signature)
		}
	})
}
