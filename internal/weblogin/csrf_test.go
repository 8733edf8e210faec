package weblogin

import (
	"net/http"
	"net/http/httptest"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://www.example.com/api", nil)
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

func TestNavigatedFromElsewhere(t *testing.T) {
	const site = "https://www.example.com"
	const desktop = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"
	const webView = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50 miniProgram/wx4f4bc4dec97d474b"
	tests := []struct {
		name, ua, fetchSite string
		referers            []string
		want                bool
	}{
		{"typed in the address bar", desktop, "none", nil, false},
		{"no fetch metadata, no referer (an old browser)", desktop, "", nil, false},
		{"a link on the site", desktop, "same-origin", []string{"https://www.example.com/page"}, false},
		{"the site, default port spelt", desktop, "same-origin", []string{"https://www.example.com:443/x"}, false},
		{"a mini program web-view", webView, "none", nil, false},
		{"a web-view that names WeChat", desktop, "cross-site", []string{"https://servicewechat.com/wx4f4bc4dec97d474b/3/page-frame.html"}, false},
		{"a web-view sending cross-site", webView, "cross-site", nil, false},
		{"an app opening a browser", desktop, "none", []string{"android-app://com.tencent.mm/"}, false},

		{"another site's link", desktop, "cross-site", []string{"https://evil.example/"}, true},
		{"another site, no referer", desktop, "cross-site", nil, true},
		{"a sibling host, no referer", desktop, "same-site", nil, true},
		{"another site, old browser", desktop, "", []string{"https://evil.example/"}, true},
		{"the site over plain http", desktop, "", []string{"http://www.example.com/"}, true},
		{"an app's referer, cross-site", desktop, "cross-site", []string{"android-app://evil/"}, true},
		{"two referers", desktop, "", []string{"https://www.example.com/", "https://evil.example/"}, true},
		{"fetch metadata in capitals", desktop, "CROSS-SITE", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, site+"/wx/web/handoff?ticket=x", nil)
			r.Header.Set("User-Agent", tt.ua)
			if tt.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			for _, ref := range tt.referers {
				r.Header.Add("Referer", ref)
			}
			if got := NavigatedFromElsewhere(r, site); got != tt.want {
				t.Fatalf("NavigatedFromElsewhere = %v, want %v", got, tt.want)
			}
		})
	}
}
