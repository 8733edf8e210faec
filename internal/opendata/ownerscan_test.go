package opendata

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// jsonOwner is the reference scanOwner must agree with: the plaintext read
// with encoding/json, openId and watermark as fields that record a null.
type jsonOwner struct {
	OpenID    refOpenID    `json:"openId"`
	Watermark refWatermark `json:"watermark"`
}

// refOpenID is a top-level openId: set when the key is present, null when
// its (last) value is null.
type refOpenID struct {
	set, null bool
	v         string
}

func (r *refOpenID) UnmarshalJSON(b []byte) error {
	r.set = true
	if string(b) == "null" {
		r.null, r.v = true, ""
		return nil
	}
	r.null = false
	return json.Unmarshal(b, &r.v)
}

// refWatermark is the watermark: a repeated one merges into the one before
// (as into a struct), null clears it.
type refWatermark struct {
	set, null bool
	appID     string
}

func (r *refWatermark) UnmarshalJSON(b []byte) error {
	r.set = true
	if string(b) == "null" {
		r.null, r.appID = true, ""
		return nil
	}
	aux := struct {
		AppID string `json:"appid"`
	}{r.appID}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	r.null, r.appID = false, aux.AppID
	return nil
}

// ownerByJSON reads plain with encoding/json: ok when it is a JSON object
// that decodes into jsonOwner without error.
func ownerByJSON(plain []byte) (o jsonOwner, ok bool) {
	trimmed := strings.TrimLeft(string(plain), " \t\r\n")
	if !strings.HasPrefix(trimmed, "{") {
		return o, false
	}
	if err := json.Unmarshal(plain, &o); err != nil {
		return jsonOwner{}, false
	}
	return o, true
}

// checkOwnerByJSON is CheckOwner with encoding/json.
func checkOwnerByJSON(plain []byte, appid, openid string) error {
	o, ok := ownerByJSON(plain)
	if !ok {
		return ErrDecrypt
	}
	if o.Watermark.set && (o.Watermark.null || o.Watermark.appID != appid) {
		return ErrForeignData
	}
	if o.OpenID.set && (o.OpenID.null || o.OpenID.v != openid) {
		return ErrForeignData
	}
	return nil
}

// compareOwner fails t when scanOwner and encoding/json disagree on plain.
func compareOwner(t *testing.T, plain []byte) {
	t.Helper()
	want, wantOK := ownerByJSON(plain)
	got, gotOK := scanOwner(plain)
	if gotOK != wantOK {
		t.Fatalf("%q: scanOwner valid=%v, encoding/json valid=%v", plain, gotOK, wantOK)
	}
	if !gotOK {
		return
	}
	if got.hasOpenID != want.OpenID.set || got.openIDNull != want.OpenID.null {
		t.Fatalf("%q: scanOwner openId present=%v null=%v, encoding/json %v %v", plain, got.hasOpenID, got.openIDNull, want.OpenID.set, want.OpenID.null)
	}
	if want.OpenID.set && !want.OpenID.null {
		if got.openID.value() != want.OpenID.v {
			t.Fatalf("%q: scanOwner openId=%q, encoding/json %q", plain, got.openID.value(), want.OpenID.v)
		}
		if !got.openID.equals(want.OpenID.v) {
			t.Fatalf("%q: openId %q does not equal itself", plain, want.OpenID.v)
		}
	}
	if got.hasWatermark != want.Watermark.set || got.watermarkNull != want.Watermark.null {
		t.Fatalf("%q: scanOwner watermark present=%v null=%v, encoding/json %v %v", plain, got.hasWatermark, got.watermarkNull, want.Watermark.set, want.Watermark.null)
	}
	if want.Watermark.set && !want.Watermark.null {
		if got.appID.value() != want.Watermark.appID {
			t.Fatalf("%q: scanOwner appid=%q, encoding/json %q", plain, got.appID.value(), want.Watermark.appID)
		}
		if !got.appID.equals(want.Watermark.appID) {
			t.Fatalf("%q: appid %q does not equal itself", plain, want.Watermark.appID)
		}
	}
}

// ownerSeeds are the inputs whose reading is easy to get wrong.
var ownerSeeds = []string{
	wechattest.UserInfoVector.Plaintext,
	`{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1477314187}}`,
	`{"stepInfoList":[{"timestamp":1445866601,"step":100},{"timestamp":1445876601,"step":120}],"watermark":{"appid":"wxA","timestamp":1}}`,
	`{"openGId":"OPENGID","watermark":{"appid":"wxA"}}`,
	`{}`, ` {} `, "\t\r\n{}\n", `{"a":1}`, ``, ` `, `null`, `[]`, `"s"`, `1`, `{`, `}`, `{}{}`, `{} x`, `{},`,
	// Keys match as encoding/json matches them to fields.
	`{"openid":"x"}`, `{"OPENID":"x"}`, `{"OpenId":"x","openId":"y"}`, `{"open\u0049d":"x"}`,
	`{"WATERMARK":{"APPID":"x"}}`, `{"watermar\u212a":{"appid":"x"}}`, "{\"watermar\u212a\":{\"appid\":\"x\"}}",
	`{"open_id":"x"}`, `{"openId ":"x"}`, `{"openIdx":"x"}`, `{"\u006fpenId":"x"}`, "{\"open\xffId\":\"x\"}",
	// Repeated keys: the last wins; watermarks merge; null clears.
	`{"openId":"a","openId":"b"}`, `{"openId":"a","openId":null}`, `{"openId":null,"openId":"a"}`,
	`{"watermark":{"appid":"a"},"watermark":{}}`, `{"watermark":{"appid":"a"},"watermark":null}`,
	`{"watermark":{"appid":"a"},"watermark":null,"watermark":{}}`, `{"watermark":{"appid":"a","appid":null}}`,
	`{"watermark":{"appid":"a","appid":"b"}}`, `{"watermark":{"openId":"a"},"openId":"b"}`,
	// Types other than string (object for watermark) or null are errors.
	`{"openId":1}`, `{"openId":true}`, `{"openId":{}}`, `{"openId":[]}`, `{"watermark":"a"}`,
	`{"watermark":[]}`, `{"watermark":1}`, `{"watermark":{"appid":1}}`, `{"watermark":{"appid":{}}}`,
	`{"watermark":{"appid":false}}`, `{"x":{"openId":1}}`,
	// Strings.
	`{"openId":"a\"b"}`, `{"openId":"\u00e9"}`, `{"openId":"é"}`, `{"openId":"\ud83d\ude00"}`, `{"openId":"\ud83d"}`,
	`{"openId":"\uDE00x"}`, "{\"openId\":\"\xff\"}", "{\"openId\":\"\xe9\x80\"}", `{"openId":"\x"}`, `{"openId":"\u12"}`,
	`{"openId":"\u12g4"}`, "{\"openId\":\"a\tb\"}", "{\"openId\":\"a\x7fb\"}", `{"openId":"\/\b\f\n\r\t\\"}`, `{"openId":"a`,
	// Numbers and literals.
	`{"a":0}`, `{"a":-0}`, `{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":1e5}`, `{"a":1E+5}`, `{"a":1e}`, `{"a":-}`,
	`{"a":1.5e-3}`, `{"a":+1}`, `{"a":0x1}`, `{"a":true}`, `{"a":tru}`, `{"a":nul}`, `{"a":nullx}`, `{"a":NaN}`,
	// Structure.
	`{"a":[1,2,]}`, `{"a":[,]}`, `{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a"::1}`, `{a:1}`, `{'a':1}`, `{"a":[]}`,
	`{"a":[[]],"b":{"c":{}}}`, `{"a":1 "b":2}`, "{\"a\":1}\x00",
	`{"a":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`,
}

// deepSeeds sit at encoding/json's nesting limit and one past it. They are
// kept out of the fuzz corpus, where their size slows every mutation.
var deepSeeds = []string{
	`{"a":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`,
	`{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, maxJSONDepth-1) + "1" + strings.Repeat("}", maxJSONDepth-1) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth) + `}`,
	`{"watermark":{"x":` + strings.Repeat("[", maxJSONDepth-2) + strings.Repeat("]", maxJSONDepth-2) + `}}`,
	`{"watermark":{"x":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}}`,
}

func TestScanOwnerAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range append(ownerSeeds, deepSeeds...) {
		compareOwner(t, []byte(s))
	}
}

func TestCheckOwnerAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range ownerSeeds {
		for _, ids := range [][2]string{{"wxA", "x"}, {"wx4f4bc4dec97d474b", "oGZUI0egBJY1zhBYw2KhdUfwVJJE"}, {"a", "b"}, {"", ""}} {
			got, want := CheckOwner([]byte(s), ids[0], ids[1]), checkOwnerByJSON([]byte(s), ids[0], ids[1])
			if got != want {
				t.Errorf("CheckOwner(%q, %q, %q) = %v, encoding/json says %v", s, ids[0], ids[1], got, want)
			}
		}
	}
}

// Keys fold as encoding/json folds them, Unicode included: the Kelvin sign
// is a 'k', the dotted and dotless i are not an 'i'.
func TestScanOwnerFoldsKeysAsEncodingJSON(t *testing.T) {
	for _, key := range []string{"openId", "OPENID", "oPeNiD", "watermarK", "watermar\u212a", "watermarK", "WATERMARK",
		"appid", "APPID", "appıd", "appİd", "openſd", "open\u0049d", "open\u0069d"} {
		compareOwner(t, []byte(`{"`+key+`":null}`))
		compareOwner(t, []byte(`{"`+key+`":"v"}`))
		compareOwner(t, []byte(`{"watermark":{"`+key+`":"v"}}`))
	}
}

func FuzzScanOwner(f *testing.F) {
	for _, s := range ownerSeeds {
		f.Add([]byte(s), "wxA", "x")
	}
	f.Fuzz(func(t *testing.T, plain []byte, appid, openid string) {
		compareOwner(t, plain)
		if got, want := CheckOwner(plain, appid, openid), checkOwnerByJSON(plain, appid, openid); got != want {
			t.Fatalf("CheckOwner(%q, %q, %q) = %v, encoding/json says %v", plain, appid, openid, got, want)
		}
	})
}
