package weblogin

import (
	"net/http"
	"net/url"
	"strings"
)

// CSRFAllowed reports whether a cookie-authenticated request may go on.
// Safe methods (GET, HEAD, OPTIONS, TRACE) always may, but for a
// WebSocket handshake (a GET that opens a channel both ways under the
// cookie's identity, which a browser makes from any page); any other
// method (POST, PUT, PATCH, DELETE and the rest), and a handshake, only
// when its Origin header, or without one its Referer's origin, is
// siteOrigin or one of allowedOrigins.
// A write that carries neither is refused, as is "Origin: null". Origins
// are "scheme://host[:port]", compared without case and without the
// scheme's default port.
func CSRFAllowed(r *http.Request, siteOrigin string, allowedOrigins []string) bool {
	if !OriginChecked(r) {
		return true
	}
	got := ""
	if o := r.Header.Values("Origin"); len(o) > 0 {
		if len(o) > 1 {
			return false
		}
		got = NormalizeOrigin(o[0])
	} else if ref := r.Header.Get("Referer"); ref != "" {
		got = NormalizeOrigin(ref)
	}
	if got == "" {
		return false
	}
	if got == NormalizeOrigin(siteOrigin) {
		return true
	}
	for _, a := range allowedOrigins {
		if got == NormalizeOrigin(a) {
			return true
		}
	}
	return false
}

// NormalizeOrigin returns the origin of an http or https URL as
// "scheme://host[:port]" in lower case, without the scheme's default port,
// or "" when s is not such a URL (as "null" is not).
func NormalizeOrigin(s string) string {
	if badChars(s) != "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return ""
	}
	return origin(u.Scheme, strings.ToLower(u.Host))
}

func origin(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host
}

// SameOriginPost reports whether a POST comes from a page of siteOrigin
// itself: its Origin (or, without one, its Referer's origin) is
// siteOrigin, and its Fetch Metadata, when sent, says same-origin. Unlike
// CSRFAllowed, the return_to origins do not pass.
//
// Behind a proxy that ends TLS and forwards plain HTTP, the site seen here
// is http:// while the browser's page is https://: the https twin of an
// http site passes too (the same host and port).
func SameOriginPost(r *http.Request, siteOrigin string) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	var twin []string
	if host, ok := strings.CutPrefix(NormalizeOrigin(siteOrigin), "http://"); ok {
		twin = []string{"https://" + host}
	}
	return r.Method == http.MethodPost && CSRFAllowed(r, siteOrigin, twin)
}

// OriginChecked reports whether a cookie-authenticated r must come from
// an allowed origin (CSRFAllowed): any method but GET, HEAD, OPTIONS and
// TRACE, and a WebSocket handshake. A safe request without an Upgrade
// header costs one map lookup.
func OriginChecked(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return websocketHandshake(r)
	}
	return true
}

// websocketHandshake reports whether r asks to become a WebSocket
// (Upgrade: websocket, in any case, among other protocols). Other upgrade
// offers (h2c, which Caddy does not take) are plain requests.
func websocketHandshake(r *http.Request) bool {
	for _, v := range r.Header["Upgrade"] {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}
