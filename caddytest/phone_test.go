package caddytest

// Acceptance points covered here (issue 3):
//   - A phone code returns the number as {phoneNumber, purePhoneNumber,
//     countryCode}; a second phone call reuses the access token: one
//     stable_token call, zero classic /cgi-bin/token calls.
//   - After WeChat invalidates (40001) or expires (42001) the access token,
//     the next phone call succeeds after exactly one more stable_token call
//     and no forced refresh.
//   - A reused phone code gives 401 invalid_code; an unknown one too.
//   - Without a token, 401.
//   - Old-style encrypted phone data decrypts (countryCode as a string or a
//     number, JSON or form body); a watermark of another app gives 403
//     watermark_mismatch.

import (
	"net/http"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

var testPhone = wechattest.Phone{PhoneNumber: "+86 13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"}

// wantPhone checks a phone answer.
func wantPhone(t *testing.T, r *reply, p wechattest.Phone) {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	got := r.Object(t)
	want := map[string]any{"phoneNumber": p.PhoneNumber, "purePhoneNumber": p.PurePhoneNumber, "countryCode": p.CountryCode}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (answer %s)", k, got[k], v, r.Body)
		}
	}
}

func TestPhoneCodeReturnsNumberAndReusesAccessToken(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("caller")
	lr := st.login(t, "caller")
	st.WeChat.AddPhoneCode("phone-code-1", testPhone)
	second := wechattest.Phone{PhoneNumber: "13900139000", PurePhoneNumber: "13900139000", CountryCode: "86"}
	st.WeChat.AddPhoneCode("phone-code-2", second)

	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "phone-code-1"}), testPhone)
	wantPhone(t, postForm(t, st.Base+"/wx/phone", lr.Token, toValues(map[string]string{"code": "phone-code-2"})), second)

	if n := st.WeChat.Calls(wechattest.PathStableToken); n != 1 {
		t.Errorf("%d stable_token calls for two phone calls, want 1", n)
	}
	if n := st.WeChat.Calls(wechattest.PathToken); n != 0 {
		t.Errorf("%d classic /cgi-bin/token calls, want 0", n)
	}
	if n := st.WeChat.ForcedRefreshes(); n != 0 {
		t.Errorf("%d forced refreshes, want 0", n)
	}
}

func TestPhoneAfterAccessTokenLossFetchesOneNewToken(t *testing.T) {
	tests := []struct {
		name string
		lose func(*wechattest.Server)
	}{
		{"invalidated (40001)", func(s *wechattest.Server) { s.InvalidateAccessToken(testAppID) }},
		{"expired (42001)", func(s *wechattest.Server) { s.ExpireAccessToken(testAppID) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startStack(t, stackConfig{})
			st.addUser("caller")
			lr := st.login(t, "caller")
			st.WeChat.AddPhoneCode("before", testPhone)
			st.WeChat.AddPhoneCode("after", testPhone)

			wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "before"}), testPhone)
			tt.lose(st.WeChat)
			wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "after"}), testPhone)

			if n := st.WeChat.Calls(wechattest.PathStableToken); n != 2 {
				t.Errorf("%d stable_token calls, want 2 (one more after the token was lost)", n)
			}
			if n := st.WeChat.ForcedRefreshes(); n != 0 {
				t.Errorf("%d forced refreshes, want 0", n)
			}
			if n := st.WeChat.Calls(wechattest.PathToken); n != 0 {
				t.Errorf("%d classic /cgi-bin/token calls, want 0", n)
			}
		})
	}
}

func TestPhoneRefusesUsedOrUnknownCode(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("caller")
	lr := st.login(t, "caller")
	st.WeChat.AddPhoneCode("single-use", testPhone)
	wantPhone(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "single-use"}), testPhone)

	tests := []struct {
		name, code string
		errcode    int
	}{
		{"reused code", "single-use", wechattest.ErrCodeUsed},
		{"unknown code", "never-issued", wechattest.ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": tt.code})
			body := wantError(t, r, http.StatusUnauthorized, "invalid_code")
			if body["wechat_errcode"] != float64(tt.errcode) {
				t.Errorf("wechat_errcode %v, want %d", body["wechat_errcode"], tt.errcode)
			}
			// A 401 to a request that carried a token says
			// error="invalid_token", whatever failed.
			if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="wechat_auth", error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}

func TestPhoneWithoutTokenIsUnauthorized(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.WeChat.AddPhoneCode("anon", testPhone)
	wantError(t, postJSON(t, st.Base+"/wx/phone", "", map[string]string{"code": "anon"}), http.StatusUnauthorized, "unauthorized")
	if n := st.WeChat.Calls(wechattest.PathPhoneNumber); n != 0 {
		t.Errorf("an anonymous phone request reached WeChat (%d calls)", n)
	}
}

func TestPhoneWithNeitherCodeNorDataIsInvalidRequest(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("caller")
	lr := st.login(t, "caller")
	wantError(t, postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{}), http.StatusBadRequest, "invalid_request")
}

func TestPhoneOldStyleEncryptedData(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("old-button")
	lr := st.login(t, "old-button")
	mark := func(appid string) map[string]any { return map[string]any{"appid": appid, "timestamp": 1} }

	tests := []struct {
		name    string
		payload map[string]any
		form    bool
		status  int
		code    string
	}{
		{"countryCode as a string", map[string]any{"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86", "watermark": mark(testAppID)}, false, 200, ""},
		{"countryCode as a number", map[string]any{"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": 86, "watermark": mark(testAppID)}, false, 200, ""},
		{"form body", map[string]any{"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86", "watermark": mark(testAppID)}, true, 200, ""},
		{"another app's watermark", map[string]any{"phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": "86", "watermark": mark("wx2222222222222222")}, false, 403, "watermark_mismatch"},
		{"not a phone number", map[string]any{"stepInfoList": []any{}, "watermark": mark(testAppID)}, false, 400, "decrypt_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, iv := encryptFor(t, user.SessionKey, tt.payload)
			fields := map[string]string{"encryptedData": enc, "iv": iv}
			var r *reply
			if tt.form {
				r = postForm(t, st.Base+"/wx/phone", lr.Token, toValues(fields))
			} else {
				r = postJSON(t, st.Base+"/wx/phone", lr.Token, fields)
			}
			if tt.status != http.StatusOK {
				wantError(t, r, tt.status, tt.code)
				return
			}
			wantPhone(t, r, wechattest.Phone{PhoneNumber: "13800138000", PurePhoneNumber: "13800138000", CountryCode: "86"})
		})
	}
	if n := st.WeChat.Calls(wechattest.PathPhoneNumber); n != 0 {
		t.Errorf("old-style phone data made %d WeChat calls, want 0", n)
	}
}
