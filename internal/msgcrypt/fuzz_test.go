package msgcrypt

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// FuzzDecrypt: no ciphertext makes Decrypt panic, and whatever it accepts
// re-encrypts and decrypts to the same message.
func FuzzDecrypt(f *testing.F) {
	for _, v := range pushVectors {
		if v.key == mpKey {
			ct, _ := base64.StdEncoding.DecodeString(v.encrypt)
			f.Add(ct)
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 48))
	c := mustNew(f, mpToken, mpKey, mpAppID)
	f.Fuzz(func(t *testing.T, ct []byte) {
		msg, err := c.Decrypt(base64.StdEncoding.EncodeToString(ct))
		if err != nil {
			return
		}
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		if again := mustOpen(t, c, enc); again != string(msg) {
			t.Fatalf("round trip changed %q to %q", msg, again)
		}
	})
}

// FuzzPlaintextLayout: any decrypted layout (pad byte, length field, appid)
// is judged without a panic, and an accepted one has the right appid.
func FuzzPlaintextLayout(f *testing.F) {
	f.Add(layout("hello", mpAppID, 5, 21, 21))
	f.Add(layout("hello", mpAppID, 0xFFFFFFFF, 21, 21))
	f.Add(layout("", "", 0, 12, 32))
	f.Add(layout("hello", mpAppID, 5, 21, 0))
	c := mustNew(f, mpToken, mpKey, mpAppID)
	f.Fuzz(func(t *testing.T, pt []byte) {
		if len(pt)%16 != 0 {
			pt = append(pt, make([]byte, 16-len(pt)%16)...)
		}
		msg, err := c.Decrypt(sealRaw(c, pt))
		if err != nil {
			return
		}
		if !bytes.Contains(pt, []byte(mpAppID)) || !bytes.Contains(pt, msg) {
			t.Fatalf("accepted %x as %q", pt, msg)
		}
	})
}

// FuzzParse: no body makes the envelope or event readers panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>`))
	f.Add([]byte(`{"ToUserName":"gh_1","Encrypt":"abc=","MsgId":7345678901234567891}`))
	f.Add([]byte(`{"MsgId":-1e999}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = ParseEnvelope(body)
		e, _, err := ParseEvent(body)
		if err == nil {
			_ = e.ID()
		}
	})
}
