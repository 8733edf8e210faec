package caddytest

// Issue 11 point 7: what WeChat answers is input. A code2Session answer
// with an openid or unionid WeChat would never send, a session_key that is
// not base64 of 16 bytes, or a redirect from api_base gives no token: 503
// wechat_unavailable, and the redirect is not followed.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestLoginRefusesAnswersWeChatWouldNotGive(t *testing.T) {
	const key = "q83vEjRWeJCrze8SNFZ4kA=="
	var followed atomic.Int32
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		fmt.Fprintf(w, `{"openid":"oRedirected00000000000000001","session_key":"%s"}`, key)
	}))
	t.Cleanup(good.Close)
	var answer atomic.Value
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answer.Load().(string)
		if a == "redirect" {
			http.Redirect(w, r, good.URL+r.URL.RequestURI(), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, a)
	}))
	t.Cleanup(hostile.Close)
	up := startUpstream(t)
	loadCaddy(t, globalOptions("")+wechatSite(siteBase, fmt.Sprintf("\t\tapp_id %s\n\t\tapp_secret %s\n\t\tapi_base %s\n\t\tsigning_key %s", testAppID, testSecret, hostile.URL, testSigningKey), up.Addr, ""))

	for _, tt := range []struct{ name, answer string }{
		{"openid with CR LF", `{"openid":"o1\r\nX-WX-OPENID: victim","session_key":"` + key + `"}`},
		{"openid of 200 KB", `{"openid":"` + strings.Repeat("o", 200<<10) + `","session_key":"` + key + `"}`},
		{"unionid with a space", `{"openid":"o1","unionid":"u 1","session_key":"` + key + `"}`},
		{"session_key not base64", `{"openid":"o1","session_key":"not-a-key"}`},
		{"session_key of 32 bytes", `{"openid":"o1","session_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`},
		{"redirect", "redirect"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answer.Store(tt.answer)
			r := postJSON(t, siteBase+"/wx/login", "", map[string]string{"code": "c-" + strings.ReplaceAll(tt.name, " ", "-")})
			wantError(t, r, http.StatusServiceUnavailable, "wechat_unavailable")
		})
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect from api_base was followed %d times", n)
	}
	// A well-formed answer still logs in.
	answer.Store(`{"openid":"oGood-_000000000000000000001","session_key":"` + key + `"}`)
	wantStatus(t, postJSON(t, siteBase+"/wx/login", "", map[string]string{"code": "c-good"}), http.StatusOK)
}
