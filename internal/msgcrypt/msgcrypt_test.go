package msgcrypt

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// sealRaw CBC-encrypts pt (a multiple of 16 bytes) exactly as given, with
// no padding added, so that tests can present any plaintext layout.
func sealRaw(c *Crypter, pt []byte) string {
	buf := bytes.Clone(pt)
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf)
}

// layout builds random ‖ len ‖ msg ‖ appid, padded with pad bytes of value
// padByte.
func layout(msg, appID string, lenField uint32, pad int, padByte byte) []byte {
	b := make([]byte, 16, 64)
	b = binary.BigEndian.AppendUint32(b, lenField)
	b = append(b, msg...)
	b = append(b, appID...)
	for range pad {
		b = append(b, padByte)
	}
	return b
}

func TestRefusals(t *testing.T) {
	c := mustNew(t, mpToken, mpKey, mpAppID)
	const ts, nonce = "1714112445", "415670741"
	msg := "hello" // 16+4+5+18 = 43 bytes: 21 bytes of pad make 64
	good := layout(msg, mpAppID, 5, 21, 21)
	if enc := sealRaw(c, good); mustOpen(t, c, enc) != msg {
		t.Fatal("the well-formed layout does not open; the cases below would prove nothing")
	}
	inconsistent := bytes.Clone(good)
	inconsistent[len(inconsistent)-7] = 20

	for _, tc := range []struct {
		name    string
		encrypt string
		sig     string // "" means the correct msg_signature for encrypt
		want    error
	}{
		{name: "wrong signature", encrypt: sealRaw(c, good), sig: strings.Repeat("0", 40), want: ErrUnauthentic},
		{name: "signature of another nonce", encrypt: sealRaw(c, good), sig: Signature(mpToken, ts, "1", sealRaw(c, good)), want: ErrUnauthentic},
		{name: "another app's appid", encrypt: sealRaw(c, layout(msg, "wx0000000000000000", 5, 21, 21)), want: ErrUnauthentic},
		{name: "appid prefix only", encrypt: sealRaw(c, layout(msg, mpAppID[:17], 5, 22, 22)), want: ErrUnauthentic},
		{name: "pad 0", encrypt: sealRaw(c, layout(msg, mpAppID, 5, 21, 0)), want: ErrUnauthentic},
		{name: "pad 33", encrypt: sealRaw(c, layout(msg+strings.Repeat("x", 20), mpAppID, 25, 33, 33)), want: ErrUnauthentic},
		{name: "pad 255", encrypt: sealRaw(c, layout(msg, mpAppID, 5, 21, 255)), want: ErrUnauthentic},
		{name: "inconsistent pad bytes", encrypt: sealRaw(c, inconsistent), want: ErrUnauthentic},
		{name: "not base64", encrypt: "not*base64!", want: ErrMalformed},
		{name: "not base64 with a bad signature", encrypt: "%%%%", sig: strings.Repeat("0", 40), want: ErrMalformed},
		{name: "ciphertext not a multiple of 16", encrypt: base64.StdEncoding.EncodeToString(make([]byte, 40)), want: ErrUnauthentic},
		{name: "too short: one block", encrypt: sealRaw(c, good[:16]), want: ErrUnauthentic},
		{name: "too short: empty", encrypt: "", want: ErrUnauthentic},
		{name: "length field past the end", encrypt: sealRaw(c, layout(msg, mpAppID, 6+18, 21, 21)), want: ErrUnauthentic},
		{name: "length field 0xFFFFFFFF", encrypt: sealRaw(c, layout(msg, mpAppID, 0xFFFFFFFF, 21, 21)), want: ErrUnauthentic},
		{name: "length field short of the appid", encrypt: sealRaw(c, layout(msg, mpAppID, 4, 21, 21)), want: ErrUnauthentic},
		{name: "pad eats into the length field", encrypt: sealRaw(c, layout("", "", 0, 12, 32)), want: ErrUnauthentic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.sig
			if sig == "" {
				sig = Signature(mpToken, ts, nonce, tc.encrypt)
			}
			got, err := c.Open(sig, ts, nonce, tc.encrypt)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Open = %q, %v; want nil, %v", got, err, tc.want)
			}
		})
	}
}

func mustOpen(t *testing.T, c *Crypter, enc string) string {
	t.Helper()
	msg, err := c.Decrypt(enc)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	return string(msg)
}

// Every pad value 1..32 occurs, 17..32 included (a decoder that accepts
// only a 16-byte block breaks on them), and each round-trips.
func TestEveryPadValueRoundTrips(t *testing.T) {
	c := mustNew(t, mpToken, mpKey, mpAppID)
	seen := map[int]bool{}
	for n := range 64 {
		msg := strings.Repeat("m", n)
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := base64.StdEncoding.DecodeString(enc)
		if len(ct)%32 != 0 {
			t.Fatalf("len %d: ciphertext of %d bytes is not whole 32-byte blocks", n, len(ct))
		}
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(pt, ct)
		pad := int(pt[len(pt)-1])
		if want := 32 - (20+n+len(mpAppID))%32; pad != want {
			t.Fatalf("len %d: pad %d, want %d", n, pad, want)
		}
		seen[pad] = true
		if got := mustOpen(t, c, enc); got != msg {
			t.Fatalf("len %d: round trip gave %q", n, got)
		}
	}
	for p := 1; p <= 32; p++ {
		if !seen[p] {
			t.Errorf("pad %d never occurred", p)
		}
	}
}

func TestAESKeyRules(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"43 characters", mpKey, true},
		{"nonzero bits in the last character, as in WeChat's samples", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", true},
		{"42 characters", mpKey[:42], false},
		{"44 characters", mpKey + "A", false},
		{"padded already", mpKey[:42] + "=", false},
		{"not base64", mpKey[:42] + "!", false},
		{"URL alphabet", mpKey[:42] + "-", false},
		{"empty", "", false},
	} {
		_, err := New(mpToken, tc.key, mpAppID)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && tc.key != "" && strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: the error repeats the key: %v", tc.name, err)
		}
	}
	if _, err := New("", mpKey, mpAppID); err == nil {
		t.Error("empty token accepted")
	}
	if _, err := New(mpToken, mpKey, ""); err == nil {
		t.Error("empty appid accepted")
	}
}

func TestParseEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Envelope
		err        error
	}{
		{"XML safe mode", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>`, Envelope{XML, "gh_1", "abc="}, nil},
		{"XML with line breaks around CDATA", "<xml>\n <ToUserName>\n  <![CDATA[gh_1]]>\n </ToUserName>\n <Encrypt>\n  <![CDATA[abc=]]>\n </Encrypt>\n</xml>", Envelope{XML, "gh_1", "abc="}, nil},
		{"XML compatibility mode", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><Content><![CDATA[hi]]></Content><Encrypt><![CDATA[abc=]]></Encrypt></xml>`, Envelope{XML, "gh_1", "abc="}, nil},
		{"XML plain mode", `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content>hi</Content></xml>`, Envelope{XML, "gh_1", ""}, nil},
		{"JSON safe mode", `{"ToUserName":"gh_1","Encrypt":"abc="}`, Envelope{JSON, "gh_1", "abc="}, nil},
		{"JSON compatibility mode", ` {"ToUserName":"gh_1","MsgId":7345678901234567891,"Encrypt":"abc="}`, Envelope{JSON, "gh_1", "abc="}, nil},
		{"JSON plain mode", `{"ToUserName":"gh_1","Event":"debug_demo"}`, Envelope{JSON, "gh_1", ""}, nil},
		{"neither", `hello`, Envelope{}, ErrMalformed},
		{"empty", ``, Envelope{}, ErrMalformed},
		{"broken XML", `<xml><Encrypt>abc`, Envelope{}, ErrMalformed},
		{"broken JSON", `{"Encrypt":`, Envelope{}, ErrMalformed},
		{"JSON Encrypt not a string", `{"Encrypt":42}`, Envelope{}, ErrMalformed},
		{"JSON array", `[1]`, Envelope{}, ErrMalformed},
		// One envelope, read one way: which of two Encrypt (or two
		// documents) a reader takes is its guess.
		{"XML declaration, trailing space and comment", "<?xml version=\"1.0\"?>\n<xml><Encrypt>abc=</Encrypt></xml>\n<!-- end -->\n", Envelope{XML, "", "abc="}, nil},
		{"XML root not xml", `<root><Encrypt>abc=</Encrypt></root>`, Envelope{}, ErrMalformed},
		{"XML two Encrypt", `<xml><Encrypt>abc=</Encrypt><Encrypt>def=</Encrypt></xml>`, Envelope{}, ErrMalformed},
		{"XML two ToUserName", `<xml><ToUserName>a</ToUserName><ToUserName>b</ToUserName><Encrypt>abc=</Encrypt></xml>`, Envelope{}, ErrMalformed},
		{"XML two documents", `<xml><Encrypt>abc=</Encrypt></xml><xml><Encrypt>def=</Encrypt></xml>`, Envelope{}, ErrMalformed},
		{"XML trailing text", `<xml><Encrypt>abc=</Encrypt></xml>junk`, Envelope{}, ErrMalformed},
		{"JSON two Encrypt", `{"Encrypt":"abc=","Encrypt":"def="}`, Envelope{}, ErrMalformed},
		// encoding/json would read these as the same member.
		{"JSON Encrypt and encrypt", `{"Encrypt":"abc=","encrypt":"def="}`, Envelope{}, ErrMalformed},
		{"JSON ENCRYPT alone", `{"ENCRYPT":"abc="}`, Envelope{}, ErrMalformed},
		{"JSON ToUserName and tousername", `{"ToUserName":"gh_1","tousername":"gh_2","Encrypt":"abc="}`, Envelope{}, ErrMalformed},
		{"JSON trailing text", `{"Encrypt":"abc="} junk`, Envelope{}, ErrMalformed},
	} {
		got, err := ParseEnvelope([]byte(tc.body))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestSealOpensAsWeChatWould(t *testing.T) {
	c := mustNew(t, mpToken, mpKey, mpAppID)
	for _, f := range []Format{XML, JSON} {
		reply := []byte(`<xml><ToUserName><![CDATA[o1]]></ToUserName><Content><![CDATA[收到 ]]></Content></xml>`)
		body, err := c.Seal(reply, "1713424427", "415670741", f)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := Sniff(body); got != f {
			t.Fatalf("%v: envelope sniffs as %v: %s", f, got, body)
		}
		env, err := ParseEnvelope(body)
		if err != nil {
			t.Fatal(err)
		}
		var sig, ts, nonce string
		if f == XML {
			sig, ts, nonce = xmlField(body, "MsgSignature"), xmlField(body, "TimeStamp"), xmlField(body, "Nonce")
		} else {
			sig, ts, nonce = jsonField(t, body, "MsgSignature"), jsonField(t, body, "TimeStamp"), jsonField(t, body, "Nonce")
		}
		if ts != "1713424427" || nonce != "415670741" {
			t.Fatalf("%v: TimeStamp %q Nonce %q", f, ts, nonce)
		}
		got, err := c.Open(sig, ts, nonce, env.Encrypt)
		if err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("%v: reply opens to %q, %v", f, got, err)
		}
	}
	if _, err := c.Seal([]byte("x"), "17134e4", "1", JSON); err == nil {
		t.Error("a timestamp that is not digits was accepted")
	}
	if _, err := c.Seal([]byte("x"), "1", "a]]>b", XML); err == nil {
		t.Error("a nonce that breaks CDATA was accepted")
	}
}

func xmlField(body []byte, name string) string {
	s := string(body)
	i := strings.Index(s, "<"+name+">")
	j := strings.Index(s, "</"+name+">")
	if i < 0 || j < i {
		return ""
	}
	v := s[i+len(name)+2 : j]
	v = strings.TrimPrefix(v, "<![CDATA[")
	return strings.TrimSuffix(v, "]]>")
}

func jsonField(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	v, err := jsonScalar(m[name])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The padding rule on its own, apart from the appid check that would also
// catch most bad pads: 1..32 identical bytes, nothing else.
func TestUnpad(t *testing.T) {
	block := func(n int, last ...byte) []byte { return append(make([]byte, n), last...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want int // remaining length, -1 for a refusal
	}{
		{"pad 1", block(31, 1), 31},
		{"pad 16", append(make([]byte, 16), bytes.Repeat([]byte{16}, 16)...), 16},
		{"pad 17", append(make([]byte, 15), bytes.Repeat([]byte{17}, 17)...), 15},
		{"pad 32", bytes.Repeat([]byte{32}, 32), 0},
		{"pad 0", block(31, 0), -1},
		{"pad 33", append(make([]byte, 31), bytes.Repeat([]byte{33}, 33)...), -1},
		{"inconsistent", append(make([]byte, 28), 3, 4, 4, 4), -1},
		{"pad longer than the input", []byte{5, 5, 5}, -1},
		{"empty", nil, -1},
	} {
		got, ok := unpad(tc.in)
		if (tc.want < 0) == ok || (ok && len(got) != tc.want) {
			t.Errorf("%s: unpad gives %d bytes, ok=%v; want %d", tc.name, len(got), ok, tc.want)
		}
	}
}
