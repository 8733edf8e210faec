package apierr

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestParseFieldsReadsJSONAndForms(t *testing.T) {
	v := wechattest.UserInfoVector
	formVector := "encryptedData=" + v.EncryptedData + "&iv=" + v.IV // '+' unescaped: it arrives as ' '
	rawData := `{"nickName":"Band Name","city":"a+b"}`

	tests := []struct {
		name        string
		contentType string
		body        string
		want        Fields
	}{
		{"JSON", "application/json", `{"code":"c1","appid":"wx1"}`, Fields{Code: "c1", AppID: "wx1"}},
		{"JSON with charset", "application/json; charset=utf-8", `{"code":"c1"}`, Fields{Code: "c1"}},
		{"JSON, content type in capitals", "Application/JSON", `{"code":"c1"}`, Fields{Code: "c1"}},
		{"JSON suffix type", "application/vnd.api+json", `{"code":"c1"}`, Fields{Code: "c1"}},
		{"JSON with no content type", "", `{"code":"c1"}`, Fields{Code: "c1"}},
		{"JSON sent as text/plain", "text/plain", ` {"code":"c1"}`, Fields{Code: "c1"}},
		{"JSON, unknown fields ignored", "application/json", `{"code":"c1","extra":{"a":[1]},"n":5}`, Fields{Code: "c1"}},
		{"JSON, every field", "application/json",
			`{"code":"c","appid":"a","encryptedData":"` + v.EncryptedData + `","iv":"` + v.IV + `","rawData":"{\"a\":1}","signature":"s"}`,
			Fields{Code: "c", AppID: "a", EncryptedData: v.EncryptedData, IV: v.IV, RawData: `{"a":1}`, Signature: "s"}},
		{"JSON keeps '+' in base64", "application/json", `{"encryptedData":"ab+cd","iv":"x+y="}`, Fields{EncryptedData: "ab+cd", IV: "x+y="}},
		{"JSON does not turn spaces into '+'", "application/json", `{"encryptedData":"ab cd","iv":"x y="}`, Fields{EncryptedData: "ab cd", IV: "x y="}},
		{"JSON null", "application/json", `null`, Fields{}},
		{"form", "application/x-www-form-urlencoded", "code=c1&appid=wx1", Fields{Code: "c1", AppID: "wx1"}},
		{"form with charset", "application/x-www-form-urlencoded; charset=UTF-8", "code=c1", Fields{Code: "c1"}},
		{"form with no content type", "", "code=c1", Fields{Code: "c1"}},
		{"form as text/plain", "text/plain; charset=utf-8", "code=c1", Fields{Code: "c1"}},
		{"form repairs '+' sent unescaped in encryptedData and iv", "application/x-www-form-urlencoded", formVector,
			Fields{EncryptedData: v.EncryptedData, IV: v.IV}},
		{"form keeps '+' sent escaped", "application/x-www-form-urlencoded", "encryptedData=ab%2Bcd&iv=x%2By%3D", Fields{EncryptedData: "ab+cd", IV: "x+y="}},
		{"form leaves rawData as sent", "application/x-www-form-urlencoded", "rawData=" + url.QueryEscape(rawData) + "&signature=s",
			Fields{RawData: rawData, Signature: "s"}},
		{"form does not touch a code's spaces", "application/x-www-form-urlencoded", "code=a+b", Fields{Code: "a b"}},
		{"JSON sent with the form content type (curl -d)", "application/x-www-form-urlencoded", `{"code":"c1","appid":"wx1"}`, Fields{Code: "c1", AppID: "wx1"}},
		{"JSON, a field in other case is another field", "application/json", `{"code":"c1","CODE":"c2","Code":"c3"}`, Fields{Code: "c1"}},
		{"JSON, repeated unknown key inside a value", "application/json", `{"code":"c1","extra":{"a":1,"a":2}}`, Fields{Code: "c1"}},
		{"empty body", "application/json", "", Fields{}},
		{"whitespace body", "application/json", " \r\n\t", Fields{}},
		{"empty body, multipart", "multipart/form-data; boundary=x", "", Fields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, aerr := ParseFields(tt.contentType, []byte(tt.body))
			if aerr != nil {
				t.Fatalf("refused: %v", aerr)
			}
			if f == nil || *f != tt.want {
				t.Fatalf("fields %+v, want %+v", f, tt.want)
			}
		})
	}
}

func TestParseFieldsRefusesWithInvalidRequest(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		mention     string // a word the message must contain
	}{
		{"code as a number", "application/json", `{"code":123}`, "code"},
		{"code as an object", "application/json", `{"code":{"v":"c"}}`, "code"},
		{"appid as a bool", "application/json", `{"code":"c","appid":true}`, "appid"},
		{"encryptedData as an array", "application/json", `{"encryptedData":["a"],"iv":"b"}`, "encryptedData"},
		{"iv as a number", "application/json", `{"encryptedData":"a","iv":16}`, "iv"},
		{"rawData as an object", "application/json", `{"rawData":{"nickName":"x"},"signature":"s"}`, "rawData"},
		{"signature as a number", "application/json", `{"rawData":"{}","signature":5}`, "signature"},
		{"JSON array", "application/json", `[{"code":"c"}]`, "JSON object"},
		{"JSON string", "application/json", `"code"`, "JSON object"},
		{"truncated JSON", "application/json", `{"code":"c`, "JSON object"},
		{"JSON with trailing garbage", "application/json", `{"code":"c"} x`, "JSON object"},
		{"JSON without content type, broken", "", `{"code":`, "JSON object"},
		{"JSON, repeated field", "application/json", `{"code":"A","code":"B"}`, "code"},
		{"JSON, repeated unknown field", "application/json", `{"code":"A","x":1,"x":2}`, "twice"},
		{"JSON, repeated field as form", "application/x-www-form-urlencoded", `{"code":"A","code":"B"}`, "twice"},
		{"form, repeated field", "application/x-www-form-urlencoded", "code=A&code=B", "twice"},
		{"form, repeated empty field", "application/x-www-form-urlencoded", "code=A&iv=&iv=", "iv"},
		{"form-typed body starting with '{' that is no JSON", "application/x-www-form-urlencoded", "{=x&code=c1", "JSON object"},
		{"malformed form", "application/x-www-form-urlencoded", "code=%zz", "form"},
		{"form with a semicolon", "application/x-www-form-urlencoded", "code=c;appid=a", "form"},
		{"multipart", "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\nc1\r\n--xyz--\r\n", "JSON or application/x-www-form-urlencoded"},
		{"XML", "application/xml", `<code>c1</code>`, "JSON or application/x-www-form-urlencoded"},
		{"octet stream", "application/octet-stream", "code=c1", "JSON or application/x-www-form-urlencoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, aerr := ParseFields(tt.contentType, []byte(tt.body))
			if aerr == nil {
				t.Fatalf("accepted as %+v", f)
			}
			if aerr.status != http.StatusBadRequest || aerr.code != "invalid_request" {
				t.Fatalf("answer %d %s, want 400 invalid_request", aerr.status, aerr.code)
			}
			if !strings.Contains(aerr.message, tt.mention) {
				t.Fatalf("message %q does not mention %q", aerr.message, tt.mention)
			}
		})
	}
}

func TestReadBodyRefusesOver64KiB(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		unknownLen bool // sent chunked: no Content-Length to refuse early
		wantStatus int  // 0: accepted
	}{
		{"64 KiB exactly", MaxBody, false, 0},
		{"64 KiB exactly, chunked", MaxBody, true, 0},
		{"one byte over", MaxBody + 1, false, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", MaxBody + 1, true, http.StatusRequestEntityTooLarge},
		{"200 KB", 200_000, false, http.StatusRequestEntityTooLarge},
		{"200 KB, chunked", 200_000, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("a"), tt.size)
			r := httptest.NewRequest(http.MethodPost, "/wx/login", bytes.NewReader(body))
			if tt.unknownLen {
				r.ContentLength = -1
				r.Body = io.NopCloser(bytes.NewReader(body)) // no length to peek at
			}
			got, aerr := ReadBody(httptest.NewRecorder(), r)
			if tt.wantStatus == 0 {
				if aerr != nil || len(got) != tt.size {
					t.Fatalf("read %d bytes, %v; want all %d", len(got), aerr, tt.size)
				}
				return
			}
			if aerr == nil || aerr.status != tt.wantStatus || aerr.code != "payload_too_large" {
				t.Fatalf("answer %v, want %d payload_too_large", aerr, tt.wantStatus)
			}
		})
	}
}

func TestReadBodyRefusesWithoutReadingAnAnnouncedHugeBody(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/wx/login", iotest.ErrReader(io.ErrUnexpectedEOF))
	r.ContentLength = 10 << 20
	if _, aerr := ReadBody(httptest.NewRecorder(), r); aerr == nil || aerr.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %v, want 413 before reading", aerr)
	}
}

func TestReadBodyBrokenBodyIsInvalidRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/wx/login", iotest.ErrReader(io.ErrUnexpectedEOF))
	r.ContentLength = -1
	_, aerr := ReadBody(httptest.NewRecorder(), r)
	if aerr == nil || aerr.status != http.StatusBadRequest || aerr.code != "invalid_request" {
		t.Fatalf("answer %v, want 400 invalid_request", aerr)
	}
	if strings.Contains(aerr.message, io.ErrUnexpectedEOF.Error()) {
		t.Fatalf("message %q carries Go error text", aerr.message)
	}
}

func TestReadFieldsHugeFormIs413(t *testing.T) {
	body := "code=c1&encryptedData=" + strings.Repeat("A", 200_000)
	r := httptest.NewRequest(http.MethodPost, "/wx/userinfo", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, aerr := ReadFields(httptest.NewRecorder(), r); aerr == nil || aerr.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer %v, want 413", aerr)
	}
}

func TestValidCodeRefusesImplausibleCodes(t *testing.T) {
	tests := []struct {
		code string
		ok   bool
	}{
		{"081abcDEF0ghIJ0kLmN2opQR3s1abcDE", true},
		{"errcode-40029", true},
		{"a", true},
		{strings.Repeat("x", 256), true},
		{"", false},
		{strings.Repeat("x", 257), false},
		{"has space", false},
		{"tab\there", false},
		{"newline\n", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"中文", false},
		{"caf\xc3\xa9", false},
	}
	for _, tt := range tests {
		if got := ValidCode(tt.code); got != tt.ok {
			t.Errorf("ValidCode(%q) = %v, want %v", tt.code, got, tt.ok)
		}
	}
}
