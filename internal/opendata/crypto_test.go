package opendata

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

// testKey is a fixed session_key for tests that encrypt their own data.
var testKey = bytes.Repeat([]byte{0x42}, 16)

var (
	testKeyB64 = base64.StdEncoding.EncodeToString(testKey)
	testIV     = bytes.Repeat([]byte{0x07}, aes.BlockSize)
	testIVB64  = base64.StdEncoding.EncodeToString(testIV)
)

// encryptRaw encrypts b, whose length must be a multiple of 16, with no
// padding added, so a test can choose the padding the decryptor sees.
func encryptRaw(t testing.TB, key, iv, b []byte) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(b)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	return base64.StdEncoding.EncodeToString(out)
}

// decryptNoPanic calls Decrypt and turns a panic into a test
// failure naming the case, so one bad input does not hide the others.
func decryptNoPanic(t *testing.T, key, data, iv string) (plain []byte, err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("Decrypt panicked: %v", p)
		}
	}()
	return Decrypt(key, data, iv)
}

func TestDecryptOpenDataDecryptsWeChatPublishedVector(t *testing.T) {
	v := wechattest.UserInfoVector
	plain, err := Decrypt(v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatalf("decrypting WeChat's published vector: %v", err)
	}
	if string(plain) != v.Plaintext {
		t.Fatalf("plaintext differs from WeChat's published one:\n got %s\nwant %s", plain, v.Plaintext)
	}
	if err := CheckOwner(plain, v.AppID, v.OpenID); err != nil {
		t.Fatalf("the vector's own app and user are refused: %v", err)
	}
}

func TestDecryptOpenDataRefusesMalformedInput(t *testing.T) {
	v := wechattest.UserInfoVector
	block := bytes.Repeat([]byte("a"), aes.BlockSize)
	padded := func(last []byte) []byte { return append(bytes.Clone(block), last...) }
	pad := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

	tamperedLast := []byte(mustB64(t, v.EncryptedData))
	tamperedLast[len(tamperedLast)-1] ^= 0x80

	tests := []struct {
		name     string
		key      string
		data     string
		iv       string
		want     error // ErrBadBase64 or ErrDecrypt
		anyError bool  // some error is enough (tampering may still unpad)
	}{
		{name: "data not base64", key: v.SessionKey, data: "!!!not base64!!!", iv: v.IV, want: ErrBadBase64},
		{name: "data base64 with a space", key: v.SessionKey, data: strings.ReplaceAll(v.EncryptedData, "+", " "), iv: v.IV, want: ErrBadBase64},
		{name: "data url-safe base64", key: v.SessionKey, data: "-_-_" + v.EncryptedData[4:], iv: v.IV, want: ErrBadBase64},
		{name: "iv not base64", key: v.SessionKey, data: v.EncryptedData, iv: "r7BX*KkLb8qrSNn05n0qiA==", want: ErrBadBase64},
		{name: "iv without padding", key: v.SessionKey, data: v.EncryptedData, iv: strings.TrimRight(v.IV, "="), want: ErrBadBase64},
		{name: "iv 15 bytes", key: v.SessionKey, data: v.EncryptedData, iv: b64(15), want: ErrDecrypt},
		{name: "iv 17 bytes", key: v.SessionKey, data: v.EncryptedData, iv: b64(17), want: ErrDecrypt},
		{name: "iv 0 bytes", key: v.SessionKey, data: v.EncryptedData, iv: "", want: ErrDecrypt},
		{name: "iv 32 bytes", key: v.SessionKey, data: v.EncryptedData, iv: b64(32), want: ErrDecrypt},
		{name: "ciphertext empty", key: v.SessionKey, data: "", iv: v.IV, want: ErrDecrypt},
		{name: "ciphertext 1 byte", key: v.SessionKey, data: b64(1), iv: v.IV, want: ErrDecrypt},
		{name: "ciphertext 15 bytes", key: v.SessionKey, data: b64(15), iv: v.IV, want: ErrDecrypt},
		{name: "ciphertext 17 bytes", key: v.SessionKey, data: b64(17), iv: v.IV, want: ErrDecrypt},
		{name: "ciphertext a block short", key: v.SessionKey, data: base64.StdEncoding.EncodeToString(mustB64(t, v.EncryptedData)[:len(mustB64(t, v.EncryptedData))-1]), iv: v.IV, want: ErrDecrypt},
		{name: "session_key not base64", key: "tiihtNczf5v6AKRyjwEUhQ", data: v.EncryptedData, iv: v.IV, want: ErrDecrypt},
		{name: "session_key 24 bytes", key: b64(24), data: v.EncryptedData, iv: v.IV, want: ErrDecrypt},
		{name: "session_key 32 bytes", key: b64(32), data: v.EncryptedData, iv: v.IV, want: ErrDecrypt},
		{name: "session_key empty", key: "", data: v.EncryptedData, iv: v.IV, want: ErrDecrypt},
		{name: "pad byte 0", key: testKeyB64, data: encryptRaw(t, testKey, testIV, padded(append(pad('x', 15), 0))), iv: testIVB64, want: ErrDecrypt},
		{name: "pad byte 17", key: testKeyB64, data: encryptRaw(t, testKey, testIV, padded(pad(17, 16))), iv: testIVB64, want: ErrDecrypt},
		{name: "pad byte 17 over 17 bytes of 17", key: testKeyB64, data: encryptRaw(t, testKey, testIV, append(pad('x', 15), pad(17, 17)...)), iv: testIVB64, want: ErrDecrypt},
		{name: "pad byte 255", key: testKeyB64, data: encryptRaw(t, testKey, testIV, padded(pad(255, 16))), iv: testIVB64, want: ErrDecrypt},
		{name: "pad bytes inconsistent", key: testKeyB64, data: encryptRaw(t, testKey, testIV, padded(append(pad('x', 12), 4, 3, 4, 4))), iv: testIVB64, want: ErrDecrypt},
		{name: "pad 16 over a single block of other bytes", key: testKeyB64, data: encryptRaw(t, testKey, testIV, append(pad('x', 15), 16)), iv: testIVB64, want: ErrDecrypt},
		{name: "wrong session_key", key: testKeyB64, data: v.EncryptedData, iv: v.IV, anyError: true},
		{name: "last block tampered", key: v.SessionKey, data: base64.StdEncoding.EncodeToString(tamperedLast), iv: v.IV, anyError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := decryptNoPanic(t, tt.key, tt.data, tt.iv)
			if err == nil {
				t.Fatalf("decrypted to %q; want an error", plain)
			}
			if plain != nil {
				t.Errorf("returned plaintext together with error %v", err)
			}
			if !tt.anyError && !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrBadBase64) && !errors.Is(err, ErrDecrypt) {
				t.Errorf("error %v is neither ErrBadBase64 nor ErrDecrypt: the answer could tell padding failures apart", err)
			}
		})
	}
}

func TestDecryptOpenDataAcceptsEveryValidPadding(t *testing.T) {
	// A control for the padding cases above: 1..16 equal bytes decrypt.
	for n := 1; n <= aes.BlockSize; n++ {
		msg := bytes.Repeat([]byte("m"), 2*aes.BlockSize-n)
		b := append(bytes.Clone(msg), bytes.Repeat([]byte{byte(n)}, n)...)
		plain, err := Decrypt(testKeyB64, encryptRaw(t, testKey, testIV, b), testIVB64)
		if err != nil {
			t.Fatalf("padding of %d: %v", n, err)
		}
		if !bytes.Equal(plain, msg) {
			t.Fatalf("padding of %d: plaintext %q, want %q", n, plain, msg)
		}
	}
}

func TestCheckOwnerAcceptsOwnDataAndRefusesForeignOrMalformed(t *testing.T) {
	const appid, openid = "wxapp000000000001", "oUser0000000000000000000001"
	tests := []struct {
		name  string
		plain string
		want  error
	}{
		{"watermark and openId of this app and user", `{"openId":"` + openid + `","watermark":{"appid":"` + appid + `","timestamp":1}}`, nil},
		{"no watermark, no openId (WeRun)", `{"stepInfoList":[{"timestamp":1,"step":100}]}`, nil},
		{"share info", `{"openGId":"GXXXX"}`, nil},
		{"unknown fields ignored", `{"watermark":{"appid":"` + appid + `","extra":[1,2]},"brandNew":{"deep":true},"openId":"` + openid + `"}`, nil},
		{"leading whitespace", " \n\t{\"watermark\":{\"appid\":\"" + appid + "\"}}", nil},
		{"watermark of another app", `{"watermark":{"appid":"wxother","timestamp":1}}`, ErrForeignData},
		{"watermark with empty appid", `{"watermark":{"appid":""}}`, ErrForeignData},
		{"watermark without appid", `{"watermark":{"timestamp":1}}`, ErrForeignData},
		{"openId of another user", `{"openId":"oSomeoneElse","watermark":{"appid":"` + appid + `"}}`, ErrForeignData},
		{"empty openId", `{"openId":""}`, ErrForeignData},
		{"openId null", `{"openId":null,"watermark":{"appid":"` + appid + `"}}`, ErrForeignData},
		{"openId null after the right one", `{"openId":"` + openid + `","openId":null}`, ErrForeignData},
		{"watermark null", `{"openId":"` + openid + `","watermark":null}`, ErrForeignData},
		{"right watermark after a null one", `{"watermark":null,"watermark":{"appid":"` + appid + `"}}`, nil},
		{"appid null leaves the one before", `{"watermark":{"appid":"` + appid + `","appid":null}}`, nil},
		{"array", `[{"openId":"` + openid + `"}]`, ErrDecrypt},
		{"string", `"hello"`, ErrDecrypt},
		{"number", `42`, ErrDecrypt},
		{"null", `null`, ErrDecrypt},
		{"true", `true`, ErrDecrypt},
		{"empty", ``, ErrDecrypt},
		{"truncated object", `{"openId":"` + openid, ErrDecrypt},
		{"object then garbage", `{"a":1} trailing`, ErrDecrypt},
		{"binary garbage", "\x00\xff\x10{", ErrDecrypt},
		{"watermark of the wrong type", `{"watermark":"` + appid + `"}`, ErrDecrypt},
		{"openId of the wrong type", `{"openId":12345}`, ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOwner([]byte(tt.plain), appid, openid)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckOwner(%s) = %v, want %v", tt.plain, err, tt.want)
			}
		})
	}
}

func TestCheckSignatureAcceptsOnlyWeChatsSHA1(t *testing.T) {
	v := wechattest.SignatureVector
	tests := []struct {
		name              string
		rawData, sig, key string
		ok                bool
	}{
		{"WeChat's published vector", v.RawData, v.Signature, v.SessionKey, true},
		{"uppercase hex", v.RawData, strings.ToUpper(v.Signature), v.SessionKey, true},
		{"rawData altered by one byte", strings.Replace(v.RawData, "Band", "Band ", 1), v.Signature, v.SessionKey, false},
		{"rawData re-encoded with spaces", strings.ReplaceAll(v.RawData, ",", ", "), v.Signature, v.SessionKey, false},
		{"signature of another session_key", v.RawData, v.Signature, "tiihtNczf5v6AKRyjwEUhQ==", false},
		{"signature one digit off", v.RawData, v.Signature[:len(v.Signature)-1] + "d", v.SessionKey, false},
		{"signature truncated", v.RawData, v.Signature[:20], v.SessionKey, false},
		{"signature empty", v.RawData, "", v.SessionKey, false},
		{"signature with a trailing newline", v.RawData, v.Signature + "\n", v.SessionKey, false},
		{"HMAC-SHA1 instead of plain SHA-1", v.RawData, hmacSHA1(v.SessionKey, v.RawData), v.SessionKey, false},
		{"SHA-1 of session_key + rawData", v.RawData, wechattest.Sign(v.SessionKey, v.RawData), v.SessionKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSignature(tt.rawData, tt.sig, tt.key)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrSignatureDiffer) {
				t.Fatalf("err = %v, want ErrSignatureDiffer", err)
			}
		})
	}
}

// TestWechattestEncryptDecryptsWithModule checks the fake's encryption and
// signature against the module's decryptor: what sandbox mode and every
// test built on the fake rely on.
func TestWechattestEncryptDecryptsWithModule(t *testing.T) {
	key := wechattest.NewSessionKey()
	for _, plain := range []string{
		`{}`,
		`{"openId":"o1","watermark":{"appid":"wx1","timestamp":1}}`,
		"0123456789abcdef", // a whole block: a full block of padding follows
		`{"nickName":"微信用户","avatarUrl":"https://example.com/a+b/c?d=e"}`,
		strings.Repeat(`{"a":"b"}`, 100),
	} {
		data, iv, err := wechattest.Encrypt(key, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(key, data, iv)
		if err != nil {
			t.Fatalf("module cannot decrypt the fake's encryption of %q: %v", plain, err)
		}
		if string(got) != plain {
			t.Fatalf("round trip: got %q, want %q", got, plain)
		}
		if err := CheckSignature(plain, wechattest.Sign(plain, key), key); err != nil {
			t.Fatalf("module refuses the fake's signature of %q", plain)
		}
		if got, err := Decrypt(wechattest.NewSessionKey(), data, iv); err == nil && string(got) == plain {
			t.Fatalf("another user's session_key decrypts %q", plain)
		}
	}
	if _, _, err := wechattest.Encrypt("not a key", []byte(`{}`)); err == nil {
		t.Fatal("wechattest.Encrypt accepted a session_key that is not base64 of 16 bytes")
	}
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacSHA1(key, msg string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
