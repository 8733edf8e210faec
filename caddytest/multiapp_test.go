package caddytest

// Acceptance points covered here (issue 3):
//   - With two `app` lines, a login for the second app yields a token whose
//     requests carry that appid upstream (and the first app still works);
//     a login without appid, or with an unknown one, is 400 invalid_request.
//   - Open data is checked against the token's app: the second app's
//     watermark decrypts for a second-app token, the first app's does not.
//   - Phone calls use the token's app for the access token.

import (
	"net/http"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

const secondAppID = "wx9a8b7c6d5e4f3a2b"

func startTwoApps(t *testing.T) *stack {
	t.Helper()
	return startStack(t, stackConfig{Apps: []testApp{
		{testAppID, testSecret},
		{secondAppID, "second-app-secret-2b4d6f8a0c1e3g5i7k9m"},
	}})
}

func TestLoginPicksAppByAppID(t *testing.T) {
	st := startTwoApps(t)
	first := st.WeChat.AddCode(testAppID, "code-a", wechattest.User{OpenID: randomOpenID()})
	second := st.WeChat.AddCode(secondAppID, "code-b", wechattest.User{OpenID: randomOpenID(), UnionID: "uShared"})

	tests := []struct {
		appid, code string
		user        wechattest.User
	}{
		{secondAppID, "code-b", second},
		{testAppID, "code-a", first},
	}
	for _, tt := range tests {
		t.Run(tt.appid, func(t *testing.T) {
			lr := st.loginApp(t, tt.appid, tt.code)
			if lr.OpenID != tt.user.OpenID {
				t.Errorf("openid %q, want %q", lr.OpenID, tt.user.OpenID)
			}
			seen := get(t, st.Base+"/api", lr.Token).Seen(t)
			if got := seen.Header.Get("X-Wx-Appid"); got != tt.appid {
				t.Errorf("upstream got X-WX-APPID %q, want %q", got, tt.appid)
			}
			if got := seen.Header.Get("X-Wx-Openid"); got != tt.user.OpenID {
				t.Errorf("upstream got X-WX-OPENID %q, want %q", got, tt.user.OpenID)
			}
		})
	}
}

func TestLoginWithSeveralAppsNeedsKnownAppID(t *testing.T) {
	st := startTwoApps(t)
	st.WeChat.AddCode(testAppID, "code", wechattest.User{OpenID: randomOpenID()})
	tests := map[string]map[string]string{
		"no appid":      {"code": "code"},
		"unknown appid": {"code": "code", "appid": "wx0000000000000000"},
		"empty appid":   {"code": "code", "appid": ""},
	}
	for name, fields := range tests {
		t.Run(name, func(t *testing.T) {
			wantError(t, postJSON(t, st.Base+"/wx/login", "", fields), http.StatusBadRequest, "invalid_request")
		})
	}
	if n := st.WeChat.Calls(wechattest.PathCode2Session); n != 0 {
		t.Errorf("%d jscode2session calls for logins without a known app, want 0", n)
	}
}

func TestOpenDataIsCheckedAgainstTheTokensApp(t *testing.T) {
	st := startTwoApps(t)
	user := st.WeChat.AddCode(secondAppID, "b", wechattest.User{OpenID: randomOpenID()})
	lr := st.loginApp(t, secondAppID, "b")
	for _, tt := range []struct {
		appid  string
		status int
	}{{secondAppID, http.StatusOK}, {testAppID, http.StatusForbidden}} {
		enc, iv := encryptFor(t, user.SessionKey, map[string]any{"openGId": "tG1", "watermark": map[string]any{"appid": tt.appid, "timestamp": 1}})
		r := postJSON(t, st.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": enc, "iv": iv})
		if tt.status == http.StatusOK {
			wantStatus(t, r, http.StatusOK)
		} else {
			wantError(t, r, tt.status, "watermark_mismatch")
		}
	}
}

func TestPhoneUsesTheTokensApp(t *testing.T) {
	st := startTwoApps(t)
	st.WeChat.AddCode(secondAppID, "b", wechattest.User{OpenID: randomOpenID()})
	lr := st.loginApp(t, secondAppID, "b")
	st.WeChat.AddPhoneCode("pc", testPhone)
	// WeChat now refuses the first app's secret: only an access token of
	// the second app (the token's) can get the number.
	st.WeChat.AddApp(testAppID, "secret-changed-in-the-admin-console-0000")
	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "pc"}), testPhone)
}
