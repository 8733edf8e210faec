package weblogin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// maxReturnTo bounds a return_to URL.
const maxReturnTo = 2048

// ErrReturnTo is the error of every refused return_to; its text is safe to
// show (it names no part of the candidate).
var ErrReturnTo = errors.New("return_to is not one of the allowed addresses")

// ReturnTo checks return_to URLs against the configured prefixes. The zero
// value allows nothing.
type ReturnTo struct {
	prefixes []prefix
}

type prefix struct {
	scheme, host, path string
}

// NewReturnTo compiles the allowed prefixes. Each is an absolute http or
// https URL with a host, no user info, query or fragment, such as
// "https://www.example.com/" or "https://m.example.com/shop/".
func NewReturnTo(prefixes []string) (*ReturnTo, error) {
	rt := &ReturnTo{}
	for _, p := range prefixes {
		if bad := badChars(p); bad != "" {
			return nil, fmt.Errorf("return_to prefix %q: %s", p, bad)
		}
		u, err := url.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("return_to prefix %q: %v", p, err)
		}
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("return_to prefix %q: must start with https:// or http://", p)
		case u.Host == "" || u.Opaque != "":
			return nil, fmt.Errorf("return_to prefix %q: needs a host", p)
		case u.User != nil:
			return nil, fmt.Errorf("return_to prefix %q: must not hold user info", p)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(p, "#"):
			return nil, fmt.Errorf("return_to prefix %q: must not hold a query or fragment", p)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if !cleanPath(path) {
			return nil, fmt.Errorf("return_to prefix %q: path has dot segments, a ';' or encoded separators", p)
		}
		rt.prefixes = append(rt.prefixes, prefix{scheme: u.Scheme, host: hostKey(u.Scheme, u.Host), path: path})
	}
	return rt, nil
}

// Origins returns the origin ("https://host[:port]") of each prefix, once
// each: the origins whose pages may send cookie-authenticated writes.
func (rt *ReturnTo) Origins() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range rt.prefixes {
		o := origin(p.scheme, p.host)
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out
}

// Check returns the absolute URL to send the browser to for candidate, or
// ErrReturnTo. A candidate is either absolute (http or https) or a path
// starting with a single "/", resolved against site (this site's
// "scheme://host"); either way its scheme and host must equal a prefix's
// exactly and its path must start with the prefix's path at a segment
// boundary ("/shop" allows "/shop" and "/shop/x", not "/shopping").
func (rt *ReturnTo) Check(candidate, site string) (string, error) {
	if candidate == "" || len(candidate) > maxReturnTo || badChars(candidate) != "" {
		return "", ErrReturnTo
	}
	u, err := url.Parse(candidate)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "", ErrReturnTo
	}
	if u.Scheme == "" {
		// Only a path: "//host" (scheme-relative), "@host", "host/x" and
		// other relative forms a browser may read as another host are
		// refused.
		if !strings.HasPrefix(candidate, "/") || strings.HasPrefix(candidate, "//") || u.Host != "" {
			return "", ErrReturnTo
		}
		base, err := url.Parse(site)
		if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
			return "", ErrReturnTo
		}
		u.Scheme, u.Host = base.Scheme, base.Host
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", ErrReturnTo
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
		u.Path, u.RawPath = "/", ""
	}
	if path[0] != '/' || !cleanPath(path) {
		return "", ErrReturnTo
	}
	host := hostKey(u.Scheme, u.Host)
	for _, p := range rt.prefixes {
		if p.scheme == u.Scheme && p.host == host && underPath(path, p.path) {
			// Re-encoding may lengthen it: the bound holds for the result.
			if out := u.String(); len(out) <= maxReturnTo {
				return out, nil
			}
			return "", ErrReturnTo
		}
	}
	return "", ErrReturnTo
}

// Allows reports whether Check takes candidate.
func (rt *ReturnTo) Allows(candidate, site string) bool {
	_, err := rt.Check(candidate, site)
	return err == nil
}

// hostKey is host in lower case without the scheme's default port.
func hostKey(scheme, host string) string {
	return strings.TrimPrefix(origin(scheme, host), scheme+"://")
}

// underPath reports whether path is prefix or below it at a segment
// boundary.
func underPath(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// badChars names what a URL must not contain anywhere: control characters,
// spaces and backslashes (which browsers read as "/": "/\evil" is
// "//evil"), and any byte outside ASCII.
func badChars(s string) string {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= 0x20 || c == 0x7f:
			return "control character or space"
		case c == '\\':
			return "backslash"
		case c >= 0x80:
			return "non-ASCII byte"
		}
	}
	return ""
}

// cleanPath reports whether an escaped path has no "." or ".." segment
// (plain or percent-encoded, which browsers and servers resolve, escaping
// the prefix), no encoded "/" or "\" (which some upstreams decode), and
// no ';' (plain or encoded: Tomcat, Jetty and Spring drop a segment's
// ";parameters" before they resolve dots, so "..;" is "..").
func cleanPath(path string) bool {
	lower := strings.ToLower(path)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") ||
		strings.Contains(lower, ";") || strings.Contains(lower, "%3b") {
		return false
	}
	for _, seg := range strings.Split(lower, "/") {
		seg = strings.ReplaceAll(seg, "%2e", ".")
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
