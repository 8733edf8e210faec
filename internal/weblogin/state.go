package weblogin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"iter"
	"net/http"
	"slices"
	"strings"
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

// bindingTagLen is how much of a state's binding names its cookie.
const bindingTagLen = 8

// StateCookieName is the name of the cookie binding one state to the
// browser: the binding cookie's name and the first characters of the
// state's binding, so that a second login begun in another tab of the same
// browser sets a cookie of its own instead of replacing the first one's.
func StateCookieName(state string, https bool) string {
	return BindingCookieName(https) + "_" + StateBinding(state)[:bindingTagLen]
}

// StateCookie is the short-lived cookie set with the redirect to WeChat
// under StateCookieName; it expires with the state.
func StateCookie(state string, https bool) *http.Cookie {
	c := BindingCookie(state, https)
	c.Name = StateCookieName(state, https)
	return c
}

// ClearStateCookie removes state's cookie once its callback is done.
func ClearStateCookie(state string, https bool) *http.Cookie {
	return clearing(StateCookieName(state, https), https)
}

// HasStateCookie reports whether the request carries any state cookie
// (of this login or another): a browser that keeps cookies.
func HasStateCookie(h http.Header, https bool) bool {
	prefix := BindingCookieName(https) + "_"
	for name := range cookieNames(h) {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// StripStateCookies removes every state cookie, under either scheme's
// name, from the request's Cookie headers: they are for the login's
// callback, never for the upstream. A request without one pays a
// substring search of its Cookie lines.
func StripStateCookies(h http.Header) {
	found := false
	for _, line := range h["Cookie"] {
		if strings.Contains(line, BindingCookieName(false)) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var names []string
	for k := range cookieNames(h) {
		for _, https := range []bool{false, true} {
			if b := BindingCookieName(https); k == b || isStateCookieName(k, b+"_") {
				names = append(names, k)
			}
		}
	}
	for _, n := range names {
		StripCookie(h, n)
	}
}

// cookieNames yields the name of each pair in the request's Cookie
// headers, in the order sent, with the spaces and tabs around it trimmed,
// and whether the pair has a '=' (a value).
func cookieNames(h http.Header) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for _, line := range h["Cookie"] {
			for line != "" {
				var pair string
				pair, line, _ = strings.Cut(line, ";")
				k, _, ok := strings.Cut(pair, "=")
				if !yield(trimOWS(k), ok) {
					return
				}
			}
		}
	}
}

// MaxStateCookies is how many state cookies a browser holds at most. Each
// login begun sets one that lives StateTTL, so a page sending the browser
// to login over and over would pile them up past the request header size
// a proxy in front (nginx: 8 KB) or the browser accepts. The newest are
// kept, so a login begun in another tab a moment ago still finishes.
const MaxStateCookies = 4

// StaleStateCookies returns the names of the state cookies the request
// carries beyond the newest MaxStateCookies-1, oldest first: a login
// begins by clearing them and setting its own. A browser sends cookies of
// one path oldest first, so the newest are the last in the Cookie headers.
// Only names of StateCookieName's form for the scheme (its prefix and
// exactly the tag's length of binding characters) count; a name sent twice
// counts once, where it is newest.
func StaleStateCookies(h http.Header, https bool) []string {
	prefix := BindingCookieName(https) + "_"
	var names []string
	for k, ok := range cookieNames(h) {
		if ok && isStateCookieName(k, prefix) {
			names = append(names, k)
		}
	}
	if len(names) < MaxStateCookies {
		return nil
	}
	seen := make(map[string]bool, len(names))
	var stale []string
	kept := 0
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		if seen[n] {
			continue
		}
		seen[n] = true
		if kept < MaxStateCookies-1 {
			kept++
			continue
		}
		stale = append(stale, n)
	}
	slices.Reverse(stale)
	return stale
}

// isStateCookieName reports whether name is prefix and a binding tag.
func isStateCookieName(name, prefix string) bool {
	return len(name) == len(prefix)+bindingTagLen && strings.HasPrefix(name, prefix) && base64URLOnly(name[len(prefix):])
}

// ClearStateCookieNamed removes the state cookie called name, one that
// StaleStateCookies returned.
func ClearStateCookieNamed(name string, https bool) *http.Cookie {
	return clearing(name, https)
}
