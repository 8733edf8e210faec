package weblogin

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// Session cookie names when none is configured: "__Host-" on HTTPS makes
// the browser refuse the cookie unless it is Secure, has Path=/ and no
// Domain, so no sibling subdomain or plain-HTTP page can set or shadow it.
const (
	SessionCookieHTTPS = "__Host-wx_session"
	SessionCookieHTTP  = "wx_session"
)

// SessionCookieName returns the configured name, or the default for the
// scheme.
func SessionCookieName(configured string, https bool) string {
	switch {
	case configured != "":
		return configured
	case https:
		return SessionCookieHTTPS
	default:
		return SessionCookieHTTP
	}
}

// CheckCookieName refuses a configured cookie name that is not an HTTP
// token, or that has a prefix ("__Host-", "__Secure-") the browser would
// refuse on a site that is not HTTPS-only.
func CheckCookieName(name string, httpsOnly bool) error {
	if name == "" {
		return errors.New("cookie name is empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return errors.New("cookie name must be letters, digits and !#$%&'*+-.^_`|~")
		}
	}
	lower := strings.ToLower(name)
	if (strings.HasPrefix(lower, "__host-") || strings.HasPrefix(lower, "__secure-")) && !httpsOnly {
		return errors.New("a __Host- or __Secure- cookie is only kept on HTTPS")
	}
	return nil
}

// SessionCookie is the session cookie: HttpOnly (no script reads it),
// SameSite=Lax (sent on top-level navigations, such as WeChat's redirect
// back, not on cross-site subrequests), Path=/, Secure on HTTPS. With ttl
// above zero it lasts that long, else until the browser closes.
func SessionCookie(name, value string, https bool, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Secure:   https,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if ttl > 0 {
		c.MaxAge = int(ttl / time.Second)
		if c.MaxAge == 0 {
			c.MaxAge = 1
		}
	}
	return c
}

// ClearSessionCookie is the cookie that makes the browser drop the session
// cookie (at logout).
func ClearSessionCookie(name string, https bool) *http.Cookie {
	return clearing(name, https)
}

func clearing(name string, https bool) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Secure:   https,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// CookieValue returns the value of the first cookie called name in the
// request's Cookie headers, without allocating.
func CookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.TrimLeft(pair, " \t")
			k, v, ok := strings.Cut(pair, "=")
			if ok && strings.TrimRight(k, " \t") == name {
				v = strings.TrimSpace(v)
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

// StripCookie removes every cookie called name from the request's Cookie
// headers, leaving the other cookies byte for byte as sent, and drops a
// Cookie header left empty. It allocates only when it removes something.
func StripCookie(h http.Header, name string) {
	lines := h["Cookie"]
	changed := false
	for i, line := range lines {
		if !strings.Contains(line, name) {
			continue
		}
		if out, removed := stripLine(line, name); removed {
			lines[i] = out
			changed = true
		}
	}
	if !changed {
		return
	}
	kept := lines[:0]
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// stripLine removes the pairs called name from one Cookie header value.
// One pair first or last in the line leaves a substring of it (no
// allocation); one in the middle costs one string.
func stripLine(line, name string) (string, bool) {
	start, end, n := -1, -1, 0
	for pos := 0; pos <= len(line); {
		next := strings.IndexByte(line[pos:], ';')
		stop := len(line)
		if next >= 0 {
			stop = pos + next
		}
		k, _, _ := strings.Cut(line[pos:stop], "=")
		if trimOWS(k) == name {
			start, end = pos, stop
			n++
		}
		if next < 0 {
			break
		}
		pos = stop + 1
	}
	switch {
	case n == 0:
		return line, false
	case n > 1:
		return stripAll(line, name), true
	case start == 0 && end == len(line):
		return "", true
	case start == 0:
		return strings.TrimLeft(line[end+1:], " \t"), true
	case end == len(line):
		return line[:start-1], true
	}
	return line[:start-1] + line[end:], true
}

// stripAll removes every pair called name, for a line holding several.
func stripAll(line, name string) string {
	var b strings.Builder
	b.Grow(len(line))
	removed := false
	first := true
	for rest := line; ; {
		pair, next, more := strings.Cut(rest, ";")
		k, _, _ := strings.Cut(pair, "=")
		if trimOWS(k) == name {
			removed = true
		} else {
			if !first {
				b.WriteByte(';')
			} else if removed {
				// The pairs before it are gone: it starts the header now.
				pair = strings.TrimLeft(pair, " \t")
			}
			b.WriteString(pair)
			first = false
		}
		if !more {
			break
		}
		rest = next
	}
	return b.String()
}

// TakeCookie returns the value of the first cookie called name, as
// CookieValue does, and removes every cookie called name, as StripCookie
// does, in one pass over the header when the cookie is there once (a
// session cookie's value is long: reading it twice costs).
func TakeCookie(h http.Header, name string) (string, bool) {
	lines := h["Cookie"]
	for i, line := range lines {
		for pos := 0; pos <= len(line); {
			stop := strings.IndexByte(line[pos:], ';')
			if stop < 0 {
				stop = len(line)
			} else {
				stop += pos
			}
			k, v, ok := strings.Cut(line[pos:stop], "=")
			if ok && trimOWS(k) == name {
				v = strings.TrimSpace(v)
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				takeAt(h, i, pos, stop, name)
				return v, true
			}
			if stop == len(line) {
				break
			}
			pos = stop + 1
		}
	}
	return "", false
}

// takeAt removes the pair at line[start:end] of Cookie line i, and any
// other cookie called name (rare: StripCookie does it).
func takeAt(h http.Header, i, start, end int, name string) {
	lines := h["Cookie"]
	line := lines[i]
	var out string
	switch {
	case start == 0 && end == len(line):
		out = ""
	case start == 0:
		out = strings.TrimLeft(line[end+1:], " \t")
	case end == len(line):
		out = line[:start-1]
	default:
		out = line[:start-1] + line[end:]
	}
	lines[i] = out
	again := strings.Contains(out, name)
	for j := i + 1; j < len(lines) && !again; j++ {
		again = strings.Contains(lines[j], name)
	}
	if again {
		StripCookie(h, name)
		return
	}
	if strings.TrimSpace(out) == "" {
		if len(lines) == 1 {
			delete(h, "Cookie")
			return
		}
		h["Cookie"] = append(lines[:i:i], lines[i+1:]...)
	}
}

// trimOWS removes the spaces and tabs around a cookie pair's name, as
// strings.Trim(s, " \t") does without building its set on every call:
// the session cookie is looked for in every request's cookies.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
