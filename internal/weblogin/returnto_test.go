package weblogin

import (
	"errors"
	"strings"
	"testing"
)

const site = "https://www.example.com"

func mustReturnTo(t *testing.T, prefixes ...string) *ReturnTo {
	t.Helper()
	rt, err := NewReturnTo(prefixes)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestReturnToAcceptsAddressesUnderAPrefix(t *testing.T) {
	rt := mustReturnTo(t, "https://www.example.com/", "https://m.example.com/shop/", "http://localhost:8080/app", "https://api.example.com:443/")
	tests := []struct{ in, want string }{
		{"https://www.example.com/", "https://www.example.com/"},
		{"https://www.example.com", "https://www.example.com/"},
		{"https://www.example.com/a/b?x=1#frag", "https://www.example.com/a/b?x=1#frag"},
		{"HTTPS://WWW.EXAMPLE.COM/a", "https://WWW.EXAMPLE.COM/a"},
		{"https://www.example.com:443/a", "https://www.example.com:443/a"},
		{"/", "https://www.example.com/"},
		{"/orders?id=7", "https://www.example.com/orders?id=7"},
		{"https://m.example.com/shop/", "https://m.example.com/shop/"},
		{"https://m.example.com/shop/item/1", "https://m.example.com/shop/item/1"},
		{"http://localhost:8080/app", "http://localhost:8080/app"},
		{"http://localhost:8080/app/x", "http://localhost:8080/app/x"},
		{"http://localhost:8080/app?q", "http://localhost:8080/app?q"},
		{"https://api.example.com/v", "https://api.example.com/v"},
	}
	for _, tt := range tests {
		got, err := rt.Check(tt.in, site)
		if err != nil || got != tt.want {
			t.Errorf("Check(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestReturnToRefuses(t *testing.T) {
	rt := mustReturnTo(t, "https://www.example.com/", "https://m.example.com/shop/", "http://localhost:8080/app")
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"scheme-relative", "//evil.com/"},
		{"scheme-relative with path", "//evil.com/www.example.com/"},
		{"backslash after slash", "/\\evil.com"},
		{"backslashes", "\\\\evil.com"},
		{"backslash in path", "https://www.example.com/a\\b"},
		{"at-sign relative", "@evil.com"},
		{"bare host", "evil.com/x"},
		{"relative path", "orders"},
		{"javascript", "javascript:alert(1)"},
		{"javascript upper", "JAVASCRIPT:alert(1)"},
		{"javascript after slash-less", "javascript://www.example.com/%0aalert(1)"},
		{"data", "data:text/html,hi"},
		{"ftp", "ftp://www.example.com/"},
		{"other host", "https://evil.com/"},
		{"suffix host", "https://www.example.com.evil.com/"},
		{"prefix host", "https://evilwww.example.com/"},
		{"sub host", "https://a.www.example.com/"},
		{"other scheme", "http://www.example.com/"},
		{"other port", "https://www.example.com:8443/"},
		{"userinfo", "https://www.example.com@evil.com/"},
		{"userinfo same host", "https://user@www.example.com/"},
		{"userinfo with password", "https://u:p@www.example.com/"},
		{"newline", "/a\nb"},
		{"carriage return", "https://www.example.com/\r\nSet-Cookie: x"},
		{"tab", "/\t/evil.com"},
		{"nul", "/a\x00"},
		{"del", "/a\x7f"},
		{"space", "/a b"},
		{"leading space", " https://www.example.com/"},
		{"non-ascii", "/caf\xc3\xa9"},
		{"segment boundary", "https://m.example.com/shopping"},
		{"prefix without slash", "https://m.example.com/shop"},
		{"outside path", "https://m.example.com/admin"},
		{"dot-dot", "https://m.example.com/shop/../admin"},
		{"encoded dot-dot", "https://m.example.com/shop/%2e%2e/admin"},
		{"mixed dot-dot", "https://m.example.com/shop/.%2E/admin"},
		{"dot", "https://m.example.com/shop/./x"},
		{"encoded slash", "https://m.example.com/shop%2f..%2fadmin"},
		{"encoded backslash", "https://m.example.com/shop/%5c..%5cadmin"},
		{"relative escapes prefix", "/../x"},
		{"dot-dot with a path parameter", "https://m.example.com/shop/..;/admin"},
		{"encoded path parameter", "https://m.example.com/shop/..%3b/admin"},
		{"path parameter", "https://m.example.com/shop;x=1/cart"},
		{"app boundary", "http://localhost:8080/apple"},
		{"too long", "/" + strings.Repeat("a", 3000)},
		{"bad escape", "/%zz"},
		{"opaque", "https:www.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := rt.Check(tt.in, site); !errors.Is(err, ErrReturnTo) {
				t.Fatalf("Check(%q) = %q, %v; want refused", tt.in, got, err)
			}
		})
	}
}

func TestReturnToRelativeNeedsAMatchingSite(t *testing.T) {
	rt := mustReturnTo(t, "https://m.example.com/shop/")
	if _, err := rt.Check("/shop/x", "https://www.example.com"); err == nil {
		t.Fatal("a path of this site was accepted under another host's prefix")
	}
	if got, err := rt.Check("/shop/x", "https://m.example.com"); err != nil || got != "https://m.example.com/shop/x" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", "not a url", "javascript:x", "//host"} {
		if _, err := rt.Check("/shop/x", bad); err == nil {
			t.Fatalf("site %q accepted", bad)
		}
	}
}

func TestReturnToZeroValueAllowsNothing(t *testing.T) {
	var rt ReturnTo
	if _, err := rt.Check("/", site); err == nil {
		t.Fatal("accepted")
	}
}

func TestNewReturnToRefusesBadPrefixes(t *testing.T) {
	for _, p := range []string{
		"", "/relative/", "www.example.com/", "ftp://x/", "javascript:x", "https:///path",
		"https://u@x/", "https://x/?q=1", "https://x/#f", "https://x/a/../b", "https://x/a\\b",
		"https://x/%2e%2e/", "https://x/a b",
	} {
		if _, err := NewReturnTo([]string{p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

func TestReturnToOrigins(t *testing.T) {
	rt := mustReturnTo(t, "https://www.example.com/", "https://WWW.example.com:443/a/", "http://localhost:8080/app")
	got := strings.Join(rt.Origins(), " ")
	if got != "https://www.example.com http://localhost:8080" {
		t.Fatalf("origins %q", got)
	}
}
