package msgcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// blockSize is the PKCS#7 block of WXBizMsgCrypt: 32 bytes, the key's
// length, not AES's 16. Pad values 17..32 are legal and occur.
const blockSize = 32

// prefixLen is the random prefix plus the 4-byte big-endian length.
const prefixLen = 16 + 4

// Crypter verifies, decrypts and encrypts the pushes of one app.
type Crypter struct {
	token string
	appID []byte
	block cipher.Block
	iv    []byte
}

// ParseAESKey decodes the console's EncodingAESKey: 43 characters of the
// standard base64 alphabet that, with "=" appended, decode to 32 bytes.
// The low bits of the last character are ignored, as WeChat's samples do.
func ParseAESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("msgcrypt: EncodingAESKey must have 43 characters, it has %d", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("msgcrypt: EncodingAESKey is not 43 characters of base64")
	}
	return key, nil
}

// New returns a Crypter for the console's Token and EncodingAESKey and the
// appid that must trail every plaintext (for a third-party platform, the
// component appid). Its errors name the problem but never the key.
func New(token, encodingAESKey, appID string) (*Crypter, error) {
	if token == "" {
		return nil, errors.New("msgcrypt: token is empty")
	}
	if appID == "" {
		return nil, errors.New("msgcrypt: appid is empty")
	}
	key, err := ParseAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &Crypter{token: token, appID: []byte(appID), block: block, iv: key[:16]}, nil
}

// VerifyURL judges the console's URL check (and a plain-mode push) by its
// signature over token, timestamp and nonce.
func (c *Crypter) VerifyURL(signature, timestamp, nonce string) bool {
	return VerifySignature(signature, c.token, timestamp, nonce)
}

// Open checks msgSignature over token, timestamp, nonce and encrypt, then
// decrypts encrypt. Non-base64 encrypt is ErrMalformed (judged first, as it
// needs no secret); every other failure is ErrUnauthentic.
func (c *Crypter) Open(msgSignature, timestamp, nonce, encrypt string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, ErrMalformed
	}
	if !VerifySignature(msgSignature, c.token, timestamp, nonce, encrypt) {
		return nil, ErrUnauthentic
	}
	return c.open(ct)
}

// Decrypt decrypts encrypt without a signature check (callers that have
// checked msg_signature, or tests). Its errors are those of Open.
func (c *Crypter) Decrypt(encrypt string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, ErrMalformed
	}
	return c.open(ct)
}

// open decrypts ct and returns the message between the length field and
// the trailing appid. It never panics: every length is checked before use.
func (c *Crypter) open(ct []byte) ([]byte, error) {
	if len(ct) < blockSize || len(ct)%aes.BlockSize != 0 {
		return nil, ErrUnauthentic
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(pt, ct)
	pt, ok := unpad(pt)
	if !ok || len(pt) < prefixLen {
		return nil, ErrUnauthentic
	}
	n := uint64(binary.BigEndian.Uint32(pt[16:prefixLen]))
	if n > uint64(len(pt)-prefixLen) {
		return nil, ErrUnauthentic
	}
	msg, appID := pt[prefixLen:prefixLen+int(n)], pt[prefixLen+int(n):]
	if subtle.ConstantTimeCompare(appID, c.appID) != 1 {
		return nil, ErrUnauthentic
	}
	return msg, nil
}

// unpad removes WXBizMsgCrypt's PKCS#7 padding: the last byte p is 1..32
// and the last p bytes all equal p.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	p := int(b[len(b)-1])
	if p < 1 || p > blockSize || p > len(b) {
		return nil, false
	}
	var diff byte
	for _, x := range b[len(b)-p:] {
		diff |= x ^ byte(p)
	}
	if diff != 0 {
		return nil, false
	}
	return b[:len(b)-p], true
}

// Encrypt encrypts msg for a passive reply: 16 random bytes, msg's length,
// msg and the appid, padded to 32 bytes, in standard base64.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", err
	}
	return c.encrypt(random, msg)
}

func (c *Crypter) encrypt(random [16]byte, msg []byte) (string, error) {
	if uint64(len(msg)) > math.MaxUint32 {
		return "", errors.New("msgcrypt: message too long")
	}
	n := prefixLen + len(msg) + len(c.appID)
	p := blockSize - n%blockSize
	buf := make([]byte, 0, n+p)
	buf = append(buf, random[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, c.appID...)
	for range p {
		buf = append(buf, byte(p))
	}
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}
