package weblogin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCSRFAllowed(t *testing.T) {
	const siteOrigin = "https://www.example.com"
	allowed := []string{"https://m.example.com", "http://localhost:8080"}
	tests := []struct {
		name, method, origin, referer string
		want                          bool
	}{
		{"get without headers", "GET", "", "", true},
		{"head", "HEAD", "", "", true},
		{"options", "OPTIONS", "", "", true},
		{"post from the site", "POST", "https://www.example.com", "", true},
		{"post from the site, default port", "POST", "https://www.example.com:443", "", true},
		{"post from the site, upper case", "POST", "HTTPS://WWW.EXAMPLE.COM", "", true},
		{"post from a return_to origin", "POST", "https://m.example.com", "", true},
		{"put from a return_to origin", "PUT", "http://localhost:8080", "", true},
		{"referer of the site", "POST", "", "https://www.example.com/page?x=1", true},
		{"origin wins over referer", "POST", "https://www.example.com", "https://evil.com/", true},

		{"post without origin or referer", "POST", "", "", false},
		{"put without origin or referer", "PUT", "", "", false},
		{"patch without origin or referer", "PATCH", "", "", false},
		{"delete without origin or referer", "DELETE", "", "", false},
		{"unknown method without headers", "PROPPATCH", "", "", false},
		{"foreign origin", "POST", "https://evil.com", "", false},
		{"foreign origin, site referer", "POST", "https://evil.com", "https://www.example.com/", false},
		{"null origin", "POST", "null", "https://www.example.com/", false},
		{"other scheme", "POST", "http://www.example.com", "", false},
		{"other port", "POST", "https://www.example.com:8443", "", false},
		{"suffix host", "POST", "https://www.example.com.evil.com", "", false},
		{"subdomain", "DELETE", "https://a.www.example.com", "", false},
		{"foreign referer", "PATCH", "", "https://evil.com/www.example.com", false},
		{"referer with userinfo", "POST", "", "https://www.example.com@evil.com/", false},
		{"garbage origin", "POST", "www.example.com", "", false},
		{"origin with control char", "POST", "https://www.example.com\r", "", false},
		{"javascript referer", "POST", "", "javascript:alert(1)", false},

		// A WebSocket handshake is a GET that is judged as a write.
		{"websocket handshake from the site", "GET+upgrade", "https://www.example.com", "", true},
		{"websocket handshake from a return_to origin", "GET+upgrade", "https://m.example.com", "", true},
		{"websocket handshake from another port", "GET+upgrade", "https://www.example.com:8443", "", false},
		{"websocket handshake from a sibling subdomain", "GET+upgrade", "https://evil.example.com", "", false},
		{"websocket handshake without origin", "GET+upgrade", "", "", false},
		{"h2c upgrade offer without origin", "GET+h2c", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, upgrade, _ := strings.Cut(tt.method, "+")
			r := httptest.NewRequest(method, "https://www.example.com/api", nil)
			switch upgrade {
			case "upgrade":
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", "WebSocket")
			case "h2c":
				r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
				r.Header.Set("Upgrade", "h2c")
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.referer != "" {
				r.Header.Set("Referer", tt.referer)
			}
			if got := CSRFAllowed(r, siteOrigin, allowed); got != tt.want {
				t.Fatalf("CSRFAllowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCSRFRefusesTwoOrigins(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Add("Origin", "https://www.example.com")
	r.Header.Add("Origin", "https://evil.com")
	if CSRFAllowed(r, "https://www.example.com", nil) {
		t.Fatal("two Origin headers accepted")
	}
}

func TestSameOriginPost(t *testing.T) {
	const site = "https://www.example.com"
	tests := []struct {
		name, origin, referer, fetchSite string
		want                             bool
	}{
		{"the site's page", site, "", "same-origin", true},
		{"the site's page, an old browser", site, "", "", true},
		{"the site by its Referer", "", site + "/wx/web/handoff?ticket=x", "", true},
		// What a browser without Origin sends under the handoff page's
		// Referrer-Policy: strict-origin.
		{"the site by its Referer, the origin alone", "", site + "/", "", true},
		{"a return_to origin", "https://m.example.com", "", "same-site", false},
		{"a sibling claiming same-origin", "https://m.example.com", "", "same-origin", false},
		{"the site's Origin, Fetch Metadata says same-site", site, "", "same-site", false},
		{"another site", "https://evil.example", "", "cross-site", false},
		{"Origin null", "null", "", "", false},
		{"neither Origin nor Referer", "", "", "", false},
	}
	if !SameOriginPost(withOrigin("http://www.example.com", "https://www.example.com"), "http://www.example.com") {
		t.Error("behind a proxy ending TLS, the page's https origin is refused")
	}
	if SameOriginPost(withOrigin("https://www.example.com", "http://www.example.com"), "https://www.example.com") {
		t.Error("an https site takes a post from its plain-HTTP twin")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, site+"/wx/web/handoff?ticket=x", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.referer != "" {
				r.Header.Set("Referer", tt.referer)
			}
			if tt.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			if got := SameOriginPost(r, site); got != tt.want {
				t.Fatalf("SameOriginPost = %v, want %v", got, tt.want)
			}
		})
	}
}

// withOrigin is a POST to site with Origin origin.
func withOrigin(site, origin string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, site+"/wx/web/handoff?ticket=x", nil)
	r.Header.Set("Origin", origin)
	return r
}
