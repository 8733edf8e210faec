package wxpay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
)

const (
	testMchID  = "1900000001"
	testSerial = "3775B6A45ACD588826D15E583A95F5DD12345678"
	testAPIKey = "0123456789abcdef0123456789ABCDEF"
)

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
	testKeyPEM  string
)

// merchantKey returns a 2048-bit merchant key and its PKCS#8 PEM, made
// once per test binary.
func merchantKey(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	testKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		testKey, testKeyPEM = k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	})
	return testKey, testKeyPEM
}
