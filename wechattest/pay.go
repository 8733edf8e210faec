package wechattest

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// This file is the crypto of the fake WeChat Pay, written from WeChat
// Pay's APIv3 documentation with the standard library only, so that it
// checks the merchant side (which uses WeChat's Go SDK) instead of sharing
// its code.

// PayKeys are the fake WeChat Pay's own keys, generated at start: a public
// key with its PUB_KEY_ID_… (the current scheme) and a platform certificate
// of another key with its serial (the older scheme).
type PayKeys struct {
	PublicKeyID  string
	PublicKey    *rsa.PrivateKey
	PublicKeyPEM string // the "PUBLIC KEY" PEM the merchant console offers

	CertSerial string
	CertKey    *rsa.PrivateKey
	CertPEM    string // the platform certificate's PEM
	Cert       *x509.Certificate
}

func newPayKeys(mchID string, now time.Time) (*PayKeys, error) {
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	if err != nil {
		return nil, err
	}
	ck, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, err
	}
	serial.SetBit(serial, 158, 1) // 20 bytes, no leading zero: 40 hex digits
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country: []string{"CN"}, Organization: []string{"Tenpay.com (fake)"},
			OrganizationalUnit: []string{"Tenpay.com CA Center"}, CommonName: "Tenpay.com Root CA (fake)",
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ck.PublicKey, ck)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(cder)
	if err != nil {
		return nil, err
	}
	return &PayKeys{
		PublicKeyID:  "PUB_KEY_ID_01" + mchID + now.Format("2006010215") + randomDigits(6),
		PublicKey:    pk,
		PublicKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		CertSerial:   fmt.Sprintf("%X", serial.Bytes()),
		CertKey:      ck,
		CertPEM:      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cder})),
		Cert:         cert,
	}, nil
}

// PaySignRSA returns base64(RSA-SHA256 PKCS#1 v1.5 of message).
func PaySignRSA(key *rsa.PrivateKey, message string) (string, error) {
	sum := sha256.Sum256([]byte(message))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// PayVerifyRSA checks a base64 RSA-SHA256 PKCS#1 v1.5 signature.
func PayVerifyRSA(pub *rsa.PublicKey, message, signature string) bool {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(message))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// VerifyPaySign checks the paySign of a wx.requestPayment object with the
// merchant public key: RSA-SHA256 over appId\ntimeStamp\nnonceStr\npackage\n.
func VerifyPaySign(merchant *rsa.PublicKey, appID, timeStamp, nonceStr, pkg, paySign string) bool {
	return PayVerifyRSA(merchant, appID+"\n"+timeStamp+"\n"+nonceStr+"\n"+pkg+"\n", paySign)
}

// PayAuthorization is a parsed merchant Authorization header.
type PayAuthorization struct {
	MchID, NonceStr, Timestamp, SerialNo, Signature string
}

// ParsePayAuthorization reads `WECHATPAY2-SHA256-RSA2048 mchid="…",
// nonce_str="…",timestamp="…",serial_no="…",signature="…"` (any order).
func ParsePayAuthorization(h string) (PayAuthorization, error) {
	const scheme = "WECHATPAY2-SHA256-RSA2048 "
	if !strings.HasPrefix(h, scheme) {
		return PayAuthorization{}, errors.New("not a WECHATPAY2-SHA256-RSA2048 authorization")
	}
	var a PayAuthorization
	seen := map[string]bool{}
	for _, part := range strings.Split(h[len(scheme):], ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || seen[k] {
			return PayAuthorization{}, errors.New("malformed authorization parameter")
		}
		seen[k] = true
		v = v[1 : len(v)-1]
		switch k {
		case "mchid":
			a.MchID = v
		case "nonce_str":
			a.NonceStr = v
		case "timestamp":
			a.Timestamp = v
		case "serial_no":
			a.SerialNo = v
		case "signature":
			a.Signature = v
		default:
			return PayAuthorization{}, errors.New("unknown authorization parameter")
		}
	}
	if a.MchID == "" || a.NonceStr == "" || a.Timestamp == "" || a.SerialNo == "" || a.Signature == "" {
		return PayAuthorization{}, errors.New("authorization parameter missing")
	}
	return a, nil
}

// SealPayResource encrypts plaintext as WeChat Pay encrypts callback
// resources and certificates: AES-256-GCM with the APIv3 key, a random
// 12-character nonce, associatedData as additional data; ciphertext is the
// base64 of ciphertext and tag.
func SealPayResource(apiV3Key string, plaintext []byte, associatedData, originalType string) (PayResource, error) {
	if len(apiV3Key) != 32 {
		return PayResource{}, errors.New("wechattest: the APIv3 key is 32 bytes")
	}
	block, err := aes.NewCipher([]byte(apiV3Key))
	if err != nil {
		return PayResource{}, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return PayResource{}, err
	}
	nonce := randomAlnum(12)
	ct := gcm.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return PayResource{
		OriginalType:   originalType,
		Algorithm:      "AEAD_AES_256_GCM",
		Ciphertext:     base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData,
		Nonce:          nonce,
	}, nil
}

// PayResource is an encrypted resource as WeChat Pay sends it.
type PayResource struct {
	OriginalType   string `json:"original_type,omitempty"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// PayNotification is a callback WeChat Pay would POST: its headers and
// body.
type PayNotification struct {
	Header http.Header
	Body   []byte
}

// Notification builds a signed, encrypted callback of eventType whose
// resource decrypts to plaintext, as the fake's signer of the moment signs
// it, at the fake's current time.
func (p *Pay) Notification(eventType, summary, originalType string, plaintext []byte) (PayNotification, error) {
	return p.notification(newUUID(), eventType, summary, originalType, plaintext)
}

// notification is Notification with the id given: WeChat Pay's retries of
// a notification keep its id.
func (p *Pay) notification(id, eventType, summary, originalType string, plaintext []byte) (PayNotification, error) {
	res, err := SealPayResource(p.opts.APIv3Key, plaintext, originalType, originalType)
	if err != nil {
		return PayNotification{}, err
	}
	now := p.opts.Now()
	body, err := json.Marshal(struct {
		ID           string      `json:"id"`
		CreateTime   string      `json:"create_time"`
		ResourceType string      `json:"resource_type"`
		EventType    string      `json:"event_type"`
		Summary      string      `json:"summary"`
		Resource     PayResource `json:"resource"`
	}{
		ID:           id,
		CreateTime:   now.In(chinaTime).Format(time.RFC3339),
		ResourceType: "encrypt-resource",
		EventType:    eventType,
		Summary:      summary,
		Resource:     res,
	})
	if err != nil {
		return PayNotification{}, err
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
	if err := p.signInto(h, body, now); err != nil {
		return PayNotification{}, err
	}
	return PayNotification{Header: h, Body: body}, nil
}

// signInto adds Wechatpay-Timestamp, -Nonce, -Signature and -Serial over
// timestamp\nnonce\nbody\n with the key of the current scheme.
func (p *Pay) signInto(h http.Header, body []byte, now time.Time) error {
	p.mu.Lock()
	useCert := p.signWithCert
	p.mu.Unlock()
	key, serial := p.keys.PublicKey, p.keys.PublicKeyID
	if useCert {
		key, serial = p.keys.CertKey, p.keys.CertSerial
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := randomAlnum(32)
	sig, err := PaySignRSA(key, ts+"\n"+nonce+"\n"+string(body)+"\n")
	if err != nil {
		return err
	}
	h.Set("Wechatpay-Timestamp", ts)
	h.Set("Wechatpay-Nonce", nonce)
	h.Set("Wechatpay-Signature", sig)
	h.Set("Wechatpay-Serial", serial)
	return nil
}

var chinaTime = time.FixedZone("CST", 8*3600)

const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomAlnum(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// compactJSON is the JSON of v, with no HTML escaping (WeChat Pay's bodies
// carry "<" and "&" as they are).
func compactJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(`{}`)
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
