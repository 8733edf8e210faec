package wechatauth

import (
	"strings"
	"testing"
)

// A public path beyond ASCII is plain only if no normalizing server could
// read it as another path; Chinese file names stay public.
func TestPlainPathBeyondASCII(t *testing.T) {
	for _, p := range []string{
		"/static/图片.png",
		"/static/报告（1）.png",
		"/static/报告：2024，终版.pdf",
		"/static/约翰·史密斯.png",
		"/static/か\u3099.png",    // NFD が, as macOS uploads name it
		"/static/cafe\u0301.png", // NFD café
		"/static/👨\u200d👩.png",   // an emoji sequence joined by ZWJ
		"/static/" + strings.Repeat("图", 300) + ".png",
	} {
		if !plainPath(p) {
			t.Errorf("%q is not plain, want plain", p)
		}
	}
	for _, p := range []string{
		"/static/．．/api/orders",                        // NFKC ".."
		"/static/a／b.png",                              // NFKC adds a segment
		"/api/orders；.png",                             // NFKC ';'
		"/static/..¥api/orders",                        // '\' in Japanese code pages
		"/static/..₩api/orders",                        // '\' in Korean code pages
		"/api/orders\u0085.png",                        // C1 control (NEL)
		"/api/orders\u2028.png",                        // line separator
		"/static/.\u200b./api/orders",                  // ".." once the zero width space is dropped
		"/static/.\u0301./api/orders",                  // ".." once the combining mark is dropped
		"/static/..∕api/orders",                        // DIVISION SLASH: '/' to iconv
		"/static/··/api/orders",                        // MIDDLE DOTS: ".." to iconv
		"/static/..∖api/orders",                        // SET MINUS: '\' to iconv
		"/static/a½.png",                               // NFKC "1⁄2", FRACTION SLASH: '/' to iconv
		"/static/" + strings.Repeat("ﷺ", 400),          // 1,208 bytes, 13 kB once normalized
		"/static/" + strings.Repeat("图", 400) + ".png", // over the bound
	} {
		if plainPath(p) {
			t.Errorf("%q (%d bytes) is plain, want refused", string([]rune(p)[:min(len([]rune(p)), 24)]), len(p))
		}
	}
}
