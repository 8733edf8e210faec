package weblogin

import (
	"net/url"
	"strings"
	"testing"
)

// Whatever a return_to holds, an accepted one is an http(s) URL on a
// prefix's host, under its path, with no user info, dot segment, control
// byte or backslash, and checking the result again gives the result.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{
		"/", "/shop/x?y#z", "//evil.com", "/\\evil", "@evil", "javascript:alert(1)", "https://m.example.com/shop/../a",
		"https://m.example.com/shop/%2e%2E/a", "https://www.example.com@evil/", "HTTPS://M.EXAMPLE.COM:443/shop/", "https:evil",
		"/%0a", "https://m.example.com/shop%2f..", "http://localhost:8080/app/x",
	} {
		f.Add(s)
	}
	rt, err := NewReturnTo([]string{"https://www.example.com/", "https://m.example.com/shop/", "http://localhost:8080/app"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, candidate string) {
		out, err := rt.Check(candidate, "https://www.example.com")
		if err != nil {
			return
		}
		u, perr := url.Parse(out)
		if perr != nil || u.User != nil || u.Opaque != "" || badChars(out) != "" || !cleanPath(u.EscapedPath()) {
			t.Fatalf("accepted %q as %q", candidate, out)
		}
		ok := false
		for _, p := range rt.prefixes {
			if p.scheme == u.Scheme && p.host == hostKey(u.Scheme, u.Host) && underPath(u.EscapedPath(), p.path) {
				ok = true
			}
		}
		if !ok || strings.HasPrefix(out, "//") {
			t.Fatalf("accepted %q as %q, under no prefix", candidate, out)
		}
		if again, err := rt.Check(out, "https://www.example.com"); err != nil || again != out {
			t.Fatalf("%q accepted as %q, which checks as %q, %v", candidate, out, again, err)
		}
	})
}
