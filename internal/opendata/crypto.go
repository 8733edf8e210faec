// Package opendata decrypts WeChat open data (AES-128-CBC under the
// session_key) and checks whose it is (watermark, openId) and its rawData
// signature. It knows no HTTP.
package opendata

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// Decryption errors. Every failure after base64 decoding is ErrDecrypt, so
// an answer never tells padding errors from others.
var (
	ErrBadBase64       = errors.New("field is not valid base64")
	ErrDecrypt         = errors.New("decryption failed")
	ErrForeignData     = errors.New("data belongs to another app or user")
	ErrSignatureDiffer = errors.New("rawData signature mismatch")
)

// decodeB64 decodes standard base64. A form body may have turned '+' into
// ' ' before we see it; the form parser repairs that (see request.go).
func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrBadBase64
	}
	return b, nil
}

// Decrypt decrypts WeChat open data (AES-128-CBC, PKCS#7) with the
// session's key and returns the plaintext, which is a JSON object. Every
// length is checked before crypto/cipher sees the input, which panics on
// bad lengths.
func Decrypt(sessionKey, encryptedData, iv string) ([]byte, error) {
	ct, err := decodeB64(encryptedData)
	if err != nil {
		return nil, err
	}
	// The iv and key are 16 bytes: decoded on the stack.
	var ivBuf, keyBuf [18]byte
	ivb, err := decodeShortB64(ivBuf[:], iv)
	if err != nil {
		return nil, ErrBadBase64
	}
	key, err := decodeShortB64(keyBuf[:], sessionKey)
	if err != nil || len(key) != 16 {
		return nil, ErrDecrypt
	}
	if len(ivb) != aes.BlockSize || len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, ErrDecrypt
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrDecrypt
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(ct, ct)
	plain, ok := unpad(ct)
	if !ok {
		return nil, ErrDecrypt
	}
	return plain, nil
}

// decodeShortB64 decodes standard base64 into buf when it fits, and
// allocates only when it does not, with the same result as
// base64.StdEncoding.DecodeString.
func decodeShortB64(buf []byte, s string) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > len(buf) {
		return base64.StdEncoding.DecodeString(s)
	}
	n, err := base64.StdEncoding.Decode(buf, []byte(s))
	return buf[:n], err
}

// unpad strips PKCS#7 padding: 1..16 bytes, all equal to their count.
func unpad(b []byte) ([]byte, bool) {
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	var diff byte
	for _, c := range b[len(b)-n:] {
		diff |= c ^ byte(n)
	}
	if diff != 0 {
		return nil, false
	}
	return b[:len(b)-n], true
}

// CheckOwner checks that plain is a JSON object and, where it says whose it
// is, that it is this app's and this user's: a watermark's appid must be
// appid, an openId must be openid. See ownerscan.go.
func CheckOwner(plain []byte, appid, openid string) error {
	o, ok := scanOwner(plain)
	if !ok {
		return ErrDecrypt
	}
	if o.hasWatermark && (o.watermarkNull || !o.appID.equals(appid)) {
		return ErrForeignData
	}
	if o.hasOpenID && (o.openIDNull || !o.openID.equals(openid)) {
		return ErrForeignData
	}
	return nil
}

// CheckSignature checks the rawData signature of getUserInfo:
// hex(sha1(rawData + session_key)), compared in constant time.
func CheckSignature(rawData, signature, sessionKey string) error {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	var want [sha1.Size * 2]byte
	hex.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare(want[:], []byte(strings.ToLower(signature))) != 1 {
		return ErrSignatureDiffer
	}
	return nil
}
