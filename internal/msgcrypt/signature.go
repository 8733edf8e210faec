package msgcrypt

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
)

// Signature is WeChat's push signature: the lower-case hex SHA-1 of the
// parts sorted byte-wise and concatenated. The URL check signs (token,
// timestamp, nonce); msg_signature and a reply's MsgSignature sign (token,
// timestamp, nonce, Encrypt).
func Signature(parts ...string) string {
	sorted := slices.Clone(parts)
	slices.Sort(sorted)
	sum := sha1.Sum([]byte(strings.Join(sorted, "")))
	return hex.EncodeToString(sum[:])
}

// VerifySignature reports whether sig is Signature(parts...), comparing in
// constant time.
func VerifySignature(sig string, parts ...string) bool {
	want := Signature(parts...)
	return subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1
}
