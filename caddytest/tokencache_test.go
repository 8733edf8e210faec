package caddytest

// Issue 11 point 10 (and issue 13 point 2): the access token of an app is
// kept across config reloads, and wechat_auth and the wechat_api gateway of
// one process share it.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestReloadKeepsTheAccessToken(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("reload-token")
	lr := st.login(t, "reload-token")
	st.WeChat.AddPhoneCode("reload-phone-1", testPhone)
	st.WeChat.AddPhoneCode("reload-phone-2", testPhone)
	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "reload-phone-1"}), testPhone)

	// Another config: the same app, something else changed.
	loadCaddy(t, strings.Replace(st.Caddyfile, "timeout 2s", "timeout 3s", 1))
	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "reload-phone-2"}), testPhone)

	if n := st.WeChat.Calls(wechattest.PathStableToken); n != 1 {
		t.Errorf("%d stable_token calls for two phone calls around a reload, want 1 (the reload dropped the token)", n)
	}
	if r := get(t, st.Base+"/", lr.Token); r.Status != http.StatusOK {
		t.Errorf("proxied request after the reload: %d", r.Status)
	}
}
