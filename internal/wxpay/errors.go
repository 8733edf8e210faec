package wxpay

import "errors"

// ErrVerification is the one kind of every refusal of something that claims
// to come from WeChat Pay: a missing, probing, unknown-serial or wrong
// signature, a stale timestamp, a resource that does not decrypt, a
// notification that does not parse. Test with errors.Is. The error text
// names the reason from a fixed list, never a key, a signature or a body,
// so it may be logged; answers to clients should still carry only a code.
var ErrVerification = errors.New("wxpay: verification failed")

type verifyError string

func (e verifyError) Error() string        { return "wxpay: verification failed: " + string(e) }
func (e verifyError) Is(target error) bool { return target == ErrVerification }

// The reasons of a refusal.
const (
	reasonMissingHeader  verifyError = "a Wechatpay-Timestamp, -Nonce, -Signature or -Serial header is missing"
	reasonRepeatedHeader verifyError = "a Wechatpay-Timestamp, -Nonce, -Signature, -Serial or -Signature-Type header is given twice"
	reasonSignatureType  verifyError = "Wechatpay-Signature-Type is not WECHATPAY2-SHA256-RSA2048"
	reasonSignTest       verifyError = "signature is a WECHATPAY/SIGNTEST/ probe"
	reasonBadTimestamp   verifyError = "Wechatpay-Timestamp is not a Unix time"
	reasonStale          verifyError = "Wechatpay-Timestamp is more than 5 minutes off"
	reasonUnknownSerial  verifyError = "Wechatpay-Serial names no public key or platform certificate of the merchant"
	reasonBadSignature   verifyError = "signature does not verify"
	reasonAlgorithm      verifyError = "resource algorithm is not AEAD_AES_256_GCM"
	reasonNonce          verifyError = "resource nonce is not 12 bytes"
	reasonDecrypt        verifyError = "resource does not decrypt"
	reasonNotJSON        verifyError = "decrypted resource is not a UTF-8 JSON object"
	reasonNotification   verifyError = "notification is not a UTF-8 JSON object with a resource object"
	reasonDuplicateField verifyError = "notification repeats a member"
)
