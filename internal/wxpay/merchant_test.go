package wxpay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestNewNamesTheFieldAndHidesTheKeys(t *testing.T) {
	key, keyPEM := merchantKey(t)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: smallDER}))
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	// A private key with a damaged body: its bytes must not surface.
	broken := strings.Replace(keyPEM, keyPEM[100:140], strings.Repeat("A", 40), 1)
	good := Config{MchID: testMchID, PrivateKey: keyPEM, SerialNo: testSerial, APIv3Key: testAPIKey}
	for _, c := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"mch_id letters", func(c *Config) { c.MchID = "19000x" }, "mch_id"},
		{"no private key", func(c *Config) { c.PrivateKey = "" }, "private_key: missing"},
		{"private key only spaces", func(c *Config) { c.PrivateKey = " \n" }, "private_key: missing"},
		{"private key not PEM", func(c *Config) { c.PrivateKey = "MIIE" }, "private_key: not a PEM block"},
		{"PKCS#1 key", func(c *Config) { c.PrivateKey = pkcs1 }, "private_key: a PKCS#1"},
		{"public key as private", func(c *Config) { c.PrivateKey = pubPEM }, "private_key: a PEM \"PUBLIC KEY\" block"},
		{"damaged key", func(c *Config) { c.PrivateKey = broken }, "private_key: not a PKCS#8 RSA private key"},
		{"1024-bit key", func(c *Config) { c.PrivateKey = smallPEM }, "private_key: an RSA key of 1024 bits"},
		{"serial not hex", func(c *Config) { c.SerialNo = "3775B6A4-5ACD" }, "serial_no"},
		{"short APIv3 key", func(c *Config) { c.APIv3Key = testAPIKey[:31] }, "api_v3_key: must be 32 bytes, got 31"},
		{"long APIv3 key", func(c *Config) { c.APIv3Key = testAPIKey + "0" }, "api_v3_key: must be 32 bytes, got 33"},
		{"public key without id", func(c *Config) { c.PublicKey = pubPEM }, "public_key_id: missing"},
		{"id without public key", func(c *Config) { c.PublicKeyID = "PUB_KEY_ID_0119" }, "public_key: missing"},
		{"bad id", func(c *Config) { c.PublicKeyID, c.PublicKey = "PUB_KEY_ID_\"x", pubPEM }, "public_key_id: must be"},
		{"private key as public", func(c *Config) { c.PublicKeyID, c.PublicKey = "PUB_KEY_ID_01", keyPEM }, "public_key: a PEM \"PRIVATE KEY\" block"},
		{"certificate not PEM", func(c *Config) { c.PlatformCertificates = []string{"MIID"} }, "platform_certificates[0]: not a PEM block"},
	} {
		cfg := good
		c.edit(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.field)
			continue
		}
		msg := err.Error()
		for _, secret := range []string{testAPIKey[:16], keyPEM[40:80], "BEGIN", "MII"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: the error shows key material: %s", c.name, msg)
			}
		}
	}
	m, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if !m.NeedsCertificates() || m.WechatpaySerial() != "" || m.MchID() != testMchID || m.SerialNo() != testSerial {
		t.Fatalf("a certificate-mode merchant: %v %q", m.NeedsCertificates(), m.WechatpaySerial())
	}
	good.PublicKeyID, good.PublicKey = "PUB_KEY_ID_0119000000012024070100000000000001", pubPEM
	if m, err = New(good); err != nil || m.NeedsCertificates() || m.WechatpaySerial() != good.PublicKeyID {
		t.Fatalf("a public-key merchant: %v", err)
	}
}
