package weblogin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"time"
)

// StateLen is the length of a state made by NewState: 32 characters of
// [A-Za-z0-9], about 190 bits.
const StateLen = 32

// MaxStateLen is the longest state WeChat carries back.
const MaxStateLen = 128

// StateTTL is how long a login may take from the redirect to the callback.
const StateTTL = 10 * time.Minute

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewState returns a fresh OAuth state: StateLen random characters of
// [A-Za-z0-9], the only characters WeChat allows in it.
func NewState() string {
	var out [StateLen]byte
	var buf [64]byte
	n := 0
	for n < StateLen {
		rand.Read(buf[:])
		for _, b := range buf {
			// 248 = 4*62: rejecting the rest keeps every character equally
			// likely.
			if b < 248 && n < StateLen {
				out[n] = alnum[b%62]
				n++
			}
		}
	}
	return string(out[:])
}

// ValidState reports whether s can be a state: 1 to MaxStateLen characters
// of [A-Za-z0-9]. A callback's state is checked before it is looked up.
func ValidState(s string) bool {
	if len(s) == 0 || len(s) > MaxStateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// StateBinding returns the value of the cookie that binds state to the
// browser that started the login: a hash of it, so the cookie alone cannot
// finish someone's login.
func StateBinding(state string) string {
	sum := sha256.Sum256([]byte("wechat_auth web state\x00" + state))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckStateBinding reports, in constant time, whether cookieValue binds
// state.
func CheckStateBinding(cookieValue, state string) bool {
	want := StateBinding(state)
	return subtle.ConstantTimeCompare([]byte(cookieValue), []byte(want)) == 1
}

// BindingCookieName is the name of the state-binding cookie.
func BindingCookieName(https bool) string {
	if https {
		return "__Host-wx_state"
	}
	return "wx_state"
}

// BindingCookie is the short-lived cookie set with the redirect to WeChat;
// it expires with the state.
func BindingCookie(state string, https bool) *http.Cookie {
	return &http.Cookie{
		Name:     BindingCookieName(https),
		Value:    StateBinding(state),
		Path:     "/",
		MaxAge:   int(StateTTL / time.Second),
		Secure:   https,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// ClearBindingCookie removes the binding cookie once the callback is done.
func ClearBindingCookie(https bool) *http.Cookie {
	return clearing(BindingCookieName(https), https)
}
