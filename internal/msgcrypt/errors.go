package msgcrypt

import "errors"

// The two kinds of refusal. Callers answer ErrUnauthentic with one and the
// same 403 whatever the cause (signature, appid, padding, length field), so
// that no answer tells a forger which check failed; ErrMalformed is for
// bodies that can be judged bad without any secret (not XML or JSON, not
// base64) and gets a 400.
var (
	ErrUnauthentic = errors.New("msgcrypt: message not authentic")
	ErrMalformed   = errors.New("msgcrypt: malformed message")
)
