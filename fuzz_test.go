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
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

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

// Fuzz tokens are issued at a fixed time for a century, so the committed
// seed corpus holds a token that verifies for as long as this test exists.
var (
	fuzzTokenIssued = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fuzzTokenTTL    = 100 * 365 * 24 * time.Hour
)

func fuzzTokenCodec() *tokenCodec {
	return newTokenCodec([]byte(testSigningKey), issuerProduction, fuzzTokenTTL, map[string]string{testAppID: "secret"})
}

// fuzzToken is the only token FuzzVerifyToken may see verified. It is in
// the seed corpus as testdata/fuzz/FuzzVerifyToken/valid_token.
func fuzzToken(t testing.TB) string {
	tok, _, err := fuzzTokenCodec().issue(testSession(), fuzzTokenIssued)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func FuzzVerifyToken(f *testing.F) {
	valid := fuzzToken(f)
	f.Add(valid)
	f.Fuzz(func(t *testing.T, raw string) {
		tc := fuzzTokenCodec()
		now := time.Now()
		id, err := tc.verify(raw)
		if err == nil {
			if raw != valid {
				t.Fatalf("verified %q, which is not the token issued", raw)
			}
			if id.OpenID != testSession().OpenID || id.SID != testSession().SID || id.AppID != testAppID {
				t.Fatalf("identity %+v", id)
			}
		} else if raw == valid {
			t.Fatalf("the token issued is refused: %v", err)
		}
		// The hot path's cache never admits what verify refuses, and
		// serves what it admitted the same way a second time.
		for range 2 {
			cid, cerr := tc.verifyCached(raw, now)
			if (cerr == nil) != (err == nil) {
				t.Fatalf("verify: %v, verifyCached: %v", err, cerr)
			}
			if cerr == nil && (cid.OpenID != id.OpenID || cid.UnionID != id.UnionID || cid.AppID != id.AppID || cid.SID != id.SID || !cid.Expires.Equal(id.Expires)) {
				t.Fatalf("verifyCached %+v, verify %+v", cid, id)
			}
		}
	})
}

// TestFuzzSeedTokenIsTheIssuedToken keeps the committed valid_token seed in
// step with the codec: if token issuing changes, the seed is regenerated
// rather than silently becoming one more refused string.
func TestFuzzSeedTokenIsTheIssuedToken(t *testing.T) {
	b, err := readSeed("testdata/fuzz/FuzzVerifyToken/valid_token")
	if err != nil {
		t.Fatal(err)
	}
	if want := fuzzToken(t); b != want {
		t.Fatalf("testdata/fuzz/FuzzVerifyToken/valid_token holds\n%s\nbut the codec issues\n%s\nupdate the seed", b, want)
	}
}

// readSeed reads the single string value of a seed corpus file.
func readSeed(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
		return "", errors.New(path + " is not a one-string seed file")
	}
	return strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
}
