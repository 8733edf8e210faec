package wechattest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// NewSessionKey returns a random session_key as WeChat gives it: the
// standard base64 of 16 bytes.
func NewSessionKey() string {
	var k [16]byte
	rand.Read(k[:])
	return base64.StdEncoding.EncodeToString(k[:])
}

// Encrypt encrypts plaintext as WeChat encrypts open data: AES-128-CBC with
// PKCS#7 padding, key = base64-decoded session_key, a random iv. It returns
// encryptedData and iv in standard base64.
func Encrypt(sessionKey string, plaintext []byte) (encryptedData, iv string, err error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil || len(key) != 16 {
		return "", "", fmt.Errorf("session_key is not base64 of 16 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	ivb := make([]byte, aes.BlockSize)
	rand.Read(ivb)
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, ivb).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(ivb), nil
}

// Sign returns the rawData signature WeChat sends with getUserInfo:
// hex(sha1(rawData + session_key)).
func Sign(rawData, sessionKey string) string {
	sum := sha1.Sum([]byte(rawData + sessionKey))
	return hex.EncodeToString(sum[:])
}

// hmacEmpty is checksession's signature: hex(hmac_sha256(session_key, "")).
func hmacEmpty(sessionKey string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	return hex.EncodeToString(m.Sum(nil))
}
