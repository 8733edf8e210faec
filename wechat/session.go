package wechat

import (
	"encoding/base64"
	"errors"
)

// maxIDLen bounds an openid or unionid. WeChat's are 28 characters; the
// bound leaves room for other formats without admitting a flood.
const maxIDLen = 64

// ValidID reports whether s looks like an openid or unionid as WeChat makes
// them: 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'. An id is put in
// headers and log lines, so nothing else may pass.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidSessionKey reports whether s is a session_key as WeChat gives it:
// the standard base64 of exactly 16 bytes.
func ValidSessionKey(s string) bool {
	if len(s) != base64.StdEncoding.EncodedLen(16) {
		return false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 16
}

// check refuses a code2Session answer that is not shaped as WeChat's.
func (s *Session) check() error {
	switch {
	case !ValidID(s.OpenID):
		return errors.New("answer without a valid openid")
	case s.UnionID != "" && !ValidID(s.UnionID):
		return errors.New("answer with an invalid unionid")
	case !ValidSessionKey(s.SessionKey):
		return errors.New("answer without a valid session_key")
	}
	return nil
}
