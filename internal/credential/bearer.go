// Package credential finds the credential a request carries: the Bearer
// token of the Authorization header, and where a token was sent that is
// never read (the query string, another scheme).
package credential

import (
	"net/http"
	"strings"
)

// Misplaced reports whether a request without a Bearer token seems
// to carry one elsewhere: a query parameter token or access_token, or an
// Authorization line under another scheme than Basic ("Token x", "JWT x",
// a bare JWT, "Bearer" with nothing after it). Basic is the upstream's own.
func Misplaced(r *http.Request) bool {
	for _, line := range r.Header["Authorization"] {
		if line = strings.TrimSpace(line); line != "" && !hasFoldPrefix(line, "basic ") {
			return true
		}
	}
	if r.URL.RawQuery == "" {
		return false
	}
	for name, vals := range r.URL.Query() {
		if name = strings.ToLower(name); name == "token" || name == "access_token" {
			for _, v := range vals {
				if v != "" {
					return true
				}
			}
		}
	}
	return false
}

// hasFoldPrefix reports whether s starts with the lower-case ASCII prefix,
// in any case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Bearer returns the Bearer token among a request's Authorization lines
// and how many lines carry one. A client may send a Basic line as well; the
// Bearer line is the one that counts.
func Bearer(lines []string) (token string, n int) {
	if len(lines) == 1 { // nearly every request
		if tok, ok := Token(lines[0]); ok {
			return tok, 1
		}
		return "", 0
	}
	for _, line := range lines {
		if tok, ok := Token(line); ok {
			token = tok
			n++
		}
	}
	return token, n
}

// DropBearer removes every Authorization line that holds a Bearer
// credential anywhere in it, so no token of this module reaches the
// upstream; other schemes (Basic for the upstream's own use) stay.
func DropBearer(hdr http.Header) {
	lines, ok := hdr["Authorization"]
	if !ok {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		if !containsFold(line, "bearer") {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(hdr, "Authorization")
		return
	}
	hdr["Authorization"] = kept
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// in any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// Token extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive.
func Token(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}
