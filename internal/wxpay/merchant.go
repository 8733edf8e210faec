package wxpay

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"
)

// Config is a merchant as the operator configures it: the values of the
// merchant console, read once. Field names in errors are the Caddyfile's.
type Config struct {
	// MchID is the merchant number (商户号), digits.
	MchID string
	// PrivateKey is the PEM of the merchant API private key
	// (apiclient_key.pem, a PKCS#8 "PRIVATE KEY" block, RSA 2048 bits).
	PrivateKey string
	// SerialNo is the serial number of the merchant API certificate
	// (商户API证书序列号), hexadecimal.
	SerialNo string
	// APIv3Key is the APIv3 key (APIv3密钥), exactly 32 bytes.
	APIv3Key string
	// PublicKeyID is the WeChat Pay public key id, PUB_KEY_ID_…; with
	// PublicKey, for merchants on the public-key scheme.
	PublicKeyID string
	// PublicKey is the PEM of the WeChat Pay public key (a "PUBLIC KEY"
	// block, RSA).
	PublicKey string
	// PlatformCertificates are PEMs of WeChat Pay platform certificates
	// known in advance; others are fetched by RefreshCertificates.
	PlatformCertificates []string
}

// Merchant holds one merchant's keys, loaded once; safe for concurrent use.
// Build it with New.
type Merchant struct {
	mchID    string
	serialNo string
	signer   *signers.SHA256WithRSASigner
	apiV3Key string

	publicKeyID string
	publicKey   *verifiers.SHA256WithRSAPubkeyVerifier // nil without public key
	certs       *certStore
	certVerify  *verifiers.SHA256WithRSAVerifier
}

// New loads a merchant. Every error names the field at fault and never
// holds key material.
func New(c Config) (*Merchant, error) {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("wxpay: merchant %s: %s: %s", c.MchID, field, fmt.Sprintf(format, args...))
	}
	if c.MchID == "" || len(c.MchID) > 32 || !allDigits(c.MchID) {
		return nil, fmt.Errorf("wxpay: mch_id must be the digits of a merchant number")
	}
	if strings.TrimSpace(c.PrivateKey) == "" {
		return nil, fail("private_key", "missing: give the merchant API private key, apiclient_key.pem, e.g. {file./etc/caddy/apiclient_key.pem}")
	}
	key, err := loadPrivateKey(c.PrivateKey)
	if err != nil {
		return nil, fail("private_key", "%v", err)
	}
	if len(c.SerialNo) < 8 || len(c.SerialNo) > 64 || !allHex(c.SerialNo) {
		return nil, fail("serial_no", "must be the hexadecimal serial number of the merchant API certificate")
	}
	if len(c.APIv3Key) != 32 {
		return nil, fail("api_v3_key", "must be 32 bytes, got %d", len(c.APIv3Key))
	}
	m := &Merchant{
		mchID:    c.MchID,
		serialNo: strings.ToUpper(c.SerialNo),
		signer: &signers.SHA256WithRSASigner{
			MchID:               c.MchID,
			PrivateKey:          key,
			CertificateSerialNo: strings.ToUpper(c.SerialNo),
		},
		apiV3Key: c.APIv3Key,
		certs:    newCertStore(),
	}
	m.certVerify = verifiers.NewSHA256WithRSAVerifier(m.certs)
	switch {
	case c.PublicKeyID == "" && c.PublicKey == "":
	case c.PublicKeyID == "":
		return nil, fail("public_key_id", "missing: public_key needs its PUB_KEY_ID_… id")
	case c.PublicKey == "":
		return nil, fail("public_key", "missing: public_key_id needs the public key's PEM")
	default:
		if !strings.HasPrefix(c.PublicKeyID, "PUB_KEY_ID_") || len(c.PublicKeyID) > 64 || !allToken(c.PublicKeyID) {
			return nil, fail("public_key_id", "must be the PUB_KEY_ID_… of the merchant console")
		}
		pub, err := loadPublicKey(c.PublicKey)
		if err != nil {
			return nil, fail("public_key", "%v", err)
		}
		m.publicKeyID = c.PublicKeyID
		m.publicKey = verifiers.NewSHA256WithRSAPubkeyVerifier(c.PublicKeyID, *pub)
	}
	static := make(map[string]*x509.Certificate)
	for i, p := range c.PlatformCertificates {
		cert, err := loadCertificate(p)
		if err != nil {
			return nil, fail(fmt.Sprintf("platform_certificates[%d]", i), "%v", err)
		}
		static[utils.GetCertificateSerialNumber(*cert)] = cert
	}
	m.certs.setStatic(static)
	return m, nil
}

// MchID returns the merchant number.
func (m *Merchant) MchID() string { return m.mchID }

// SerialNo returns the serial number of the merchant API certificate, as
// the Authorization header names it.
func (m *Merchant) SerialNo() string { return m.serialNo }

// PublicKeyID returns the WeChat Pay public key id, or "" without one.
func (m *Merchant) PublicKeyID() string { return m.publicKeyID }

// WechatpaySerial returns what a request's Wechatpay-Serial header names:
// the public key id when the merchant has one, else the serial of the
// newest platform certificate known ("" before any).
func (m *Merchant) WechatpaySerial() string {
	if m.publicKeyID != "" {
		return m.publicKeyID
	}
	return m.certs.newest()
}

// NeedsCertificates reports whether the merchant verifies with platform
// certificates only, so that RefreshCertificates must have run before
// anything from WeChat Pay verifies.
func (m *Merchant) NeedsCertificates() bool { return m.publicKey == nil }

func loadPrivateKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return nil, errors.New("not a PEM block")
	case block.Type == "RSA PRIVATE KEY":
		return nil, errors.New(`a PKCS#1 "RSA PRIVATE KEY" block; give the PKCS#8 apiclient_key.pem ("PRIVATE KEY"), or convert with openssl pkcs8 -topk8 -nocrypt`)
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("an encrypted private key; give the unencrypted apiclient_key.pem")
	case block.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("a PEM %q block, not \"PRIVATE KEY\"", block.Type)
	}
	// The SDK's error text is not shown: it may echo what it parsed.
	key, err := utils.LoadPrivateKey(s)
	if err != nil {
		return nil, errors.New("not a PKCS#8 RSA private key")
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits; WeChat Pay signs with RSA 2048", key.N.BitLen())
	}
	return key, nil
}

func loadPublicKey(s string) (*rsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return nil, errors.New("not a PEM block")
	case block.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("a PEM %q block, not \"PUBLIC KEY\"", block.Type)
	}
	key, err := utils.LoadPublicKey(s)
	if err != nil {
		return nil, errors.New("not an RSA public key")
	}
	if key.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits; WeChat Pay signs with RSA 2048", key.N.BitLen())
	}
	return key, nil
}

func loadCertificate(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	switch {
	case block == nil:
		return nil, errors.New("not a PEM block")
	case block.Type != "CERTIFICATE":
		return nil, fmt.Errorf("a PEM %q block, not \"CERTIFICATE\"", block.Type)
	}
	cert, err := utils.LoadCertificate(s)
	if err != nil {
		return nil, errors.New("not an X.509 certificate")
	}
	// The SDK's certificate verifier assumes an RSA key.
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return nil, errors.New("not a certificate of an RSA key")
	}
	return cert, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// allToken reports whether s is letters, digits, '_' and '-' only: safe
// inside a quoted header parameter.
func allToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
