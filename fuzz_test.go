package wechatauth

// Fuzz targets for the parsers that read what a client sends: encrypted
// open data, request bodies and tokens. Their seed corpora are committed
// under testdata/fuzz/ and run with every `go test`; to fuzz longer:
//
//	go test -run '^$' -fuzz FuzzDecryptOpenData -fuzztime 10m .
//
// (one target at a time; also FuzzDecryptChecked, FuzzParseFields,
// FuzzVerifyToken). A failing input is written to testdata/fuzz/FuzzXxx/
// and then runs with every `go test` until fixed.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/internal/apierr"
	"github.com/caddy-wechat/wechatauth/internal/opendata"
	"github.com/caddy-wechat/wechatauth/internal/session"
	"github.com/caddy-wechat/wechatauth/wechattest"
)

func FuzzDecryptOpenData(f *testing.F) {
	v := wechattest.UserInfoVector
	f.Add(v.SessionKey, v.EncryptedData, v.IV)
	f.Fuzz(func(t *testing.T, sessionKey, data, iv string) {
		plain, err := opendata.Decrypt(sessionKey, data, iv)
		if err != nil {
			if plain != nil {
				t.Fatalf("plaintext returned with error %v", err)
			}
			if !errors.Is(err, opendata.ErrBadBase64) && !errors.Is(err, opendata.ErrDecrypt) {
				t.Fatalf("error %v is neither opendata.ErrBadBase64 nor opendata.ErrDecrypt", err)
			}
			return
		}
		ct, _ := base64.StdEncoding.DecodeString(data)
		if pad := len(ct) - len(plain); pad < 1 || pad > 16 {
			t.Fatalf("%d bytes of ciphertext gave %d of plaintext", len(ct), len(plain))
		}
		switch err := opendata.CheckOwner(plain, v.AppID, v.OpenID); {
		case err == nil, errors.Is(err, opendata.ErrDecrypt), errors.Is(err, opendata.ErrForeignData):
		default:
			t.Fatalf("opendata.CheckOwner: unexpected error %v", err)
		}
	})
}

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

func FuzzParseFields(f *testing.F) {
	f.Add("application/json", []byte(`{"code":"c1"}`))
	f.Add("application/json", []byte(`{"code":"A","code":"B"}`))
	f.Add("application/x-www-form-urlencoded", []byte(`code=A&code=B`))
	f.Add("application/x-www-form-urlencoded", []byte(`{"encryptedData":"a b"}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		got, aerr := apierr.ParseFields(contentType, body)
		if aerr != nil {
			if got != nil {
				t.Fatalf("fields %+v returned with error %v", got, aerr)
			}
			if aerr.Status() != http.StatusBadRequest || aerr.Code() != "invalid_request" {
				t.Fatalf("answer %d %s, want 400 invalid_request", aerr.Status(), aerr.Code())
			}
			return
		}
		if got == nil {
			t.Fatal("nil fields with a nil error")
		}
		// A form-typed body that is a JSON object is read as JSON, whose
		// spaces are the client's own.
		isJSON := bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))
		if mt, _, _ := mime.ParseMediaType(contentType); mt == "application/x-www-form-urlencoded" && !isJSON {
			if strings.Contains(got.EncryptedData, " ") || strings.Contains(got.IV, " ") {
				t.Fatalf("form base64 not repaired: %+v", got)
			}
		}
	})
}
