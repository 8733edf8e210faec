package msgcrypt

import (
	"strings"
	"testing"
)

// BenchmarkOpen is the per-push crypto cost of safe mode: envelope parse,
// msg_signature check and decryption of a 1 KiB message.
func BenchmarkOpen(b *testing.B) {
	c := mustNew(b, mpToken, mpKey, mpAppID)
	msg := "<xml><Content><![CDATA[" + strings.Repeat("x", 1000) + "]]></Content></xml>"
	enc, err := c.Encrypt([]byte(msg))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	sig := Signature(mpToken, "1714112445", "415670741", enc)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := ParseEnvelope(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Open(sig, "1714112445", "415670741", env.Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal is the cost of an encrypted passive reply.
func BenchmarkSeal(b *testing.B) {
	c := mustNew(b, mpToken, mpKey, mpAppID)
	reply := []byte("<xml><Content><![CDATA[" + strings.Repeat("x", 200) + "]]></Content></xml>")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Seal(reply, "1713424427", "415670741", XML); err != nil {
			b.Fatal(err)
		}
	}
}
