package caddytest

// Acceptance points covered here (issue 2, sandbox mode):
//   - In sandbox mode, two logins with the same code give the same openid
//     (and another code another openid), and the token works upstream.
//   - A sandbox token is refused by a non-sandbox site with the same
//     signing key and the same appid (another port of the same Caddy), and
//     the other way round.
//   - The output of /wx/sandbox/encrypt for a JSON object, posted to
//     /wx/userinfo, decrypts back to that object (with openId and watermark
//     added), its rawData signature included; an altered rawData is 400
//     signature_mismatch.
//   - /wx/sandbox/encrypt needs a token and exists only in sandbox mode.
//   - Sandbox accepts phone codes phone-<digits>.

import (
	"net/http"
	"strings"
	"testing"
)

const sandboxSiteAppID = "wx5a5a5a5a5a5a5a5a"

// startSandboxAndProduction loads, through startStack, a sandbox site on
// siteBase and a production site on siteBase2, same appid and signing key,
// both in front of one upstream.
func startSandboxAndProduction(t *testing.T) *stack {
	t.Helper()
	return startStack(t, stackConfig{
		Apps:    []testApp{{sandboxSiteAppID, testSecret}},
		Sandbox: true,
		Sites: func(st *stack) string {
			production := "\t\tapp_id " + sandboxSiteAppID + "\n\t\tapp_secret " + testSecret + "\n\t\tapi_base " + st.WeChatURL +
				"\n\t\tsigning_key " + testSigningKey + "\n\t\ttimeout 2s\n"
			return wechatSite(siteBase2, production, st.Upstream.Addr, "")
		},
	})
}

func TestSandboxSameCodeGivesSameOpenID(t *testing.T) {
	st := startSandboxAndProduction(t)
	first := st.login(t, "alice")
	again := st.login(t, "alice")
	other := st.login(t, "bob")
	if first.OpenID == "" || first.OpenID != again.OpenID {
		t.Errorf("same code gave openids %q and %q", first.OpenID, again.OpenID)
	}
	if other.OpenID == first.OpenID {
		t.Errorf("codes alice and bob gave the same openid %q", other.OpenID)
	}
	seen := get(t, st.Base+"/api", again.Token).Seen(t)
	if seen.Header.Get("X-Wx-Openid") != first.OpenID || seen.Header.Get("X-Wx-Appid") != sandboxSiteAppID {
		t.Errorf("upstream got openid %q appid %q", seen.Header.Get("X-Wx-Openid"), seen.Header.Get("X-Wx-Appid"))
	}
}

func TestSandboxAndProductionRefuseEachOthersTokens(t *testing.T) {
	st := startSandboxAndProduction(t)
	sandboxToken := st.login(t, "carol").Token
	st.WeChat.AddCode(sandboxSiteAppID, "real-code", wechattestUser())
	productionToken := loginAt(t, siteBase2, map[string]string{"code": "real-code"}).Token

	// Each site takes its own token.
	wantStatus(t, get(t, siteBase+"/api", sandboxToken), http.StatusOK)
	wantStatus(t, get(t, siteBase2+"/api", productionToken), http.StatusOK)

	t.Run("sandbox token on the production site", func(t *testing.T) {
		wantError(t, get(t, siteBase2+"/api", sandboxToken), http.StatusUnauthorized, "invalid_token")
		wantError(t, send(t, http.MethodPost, siteBase2+"/wx/refresh", bearer(sandboxToken), ""), http.StatusUnauthorized, "invalid_token")
	})
	t.Run("production token on the sandbox site", func(t *testing.T) {
		wantError(t, get(t, siteBase+"/api", productionToken), http.StatusUnauthorized, "invalid_token")
	})
}

func TestSandboxEncryptRoundTrip(t *testing.T) {
	st := startSandboxAndProduction(t)
	lr := st.login(t, "dave")
	object := `{"nickName":"测试 user","gender":1,"avatarUrl":"https://example.com/a.png?x=1&y=2","extra":{"list":[1,2,3]}}`

	r := post(t, st.Base+"/wx/sandbox/encrypt", lr.Token, "application/json", object)
	wantStatus(t, r, http.StatusOK)
	out := r.Object(t)
	fields := map[string]string{}
	for _, k := range []string{"encryptedData", "iv", "rawData", "signature"} {
		s, _ := out[k].(string)
		if s == "" {
			t.Fatalf("sandbox encrypt answer lacks %s: %s", k, r.Body)
		}
		fields[k] = s
	}
	if fields["rawData"] != object {
		t.Errorf("rawData %q, want the object as sent %q", fields["rawData"], object)
	}
	if strings.Contains(fields["encryptedData"], "nickName") {
		t.Errorf("encryptedData is not encrypted")
	}

	r = postJSON(t, st.Base+"/wx/userinfo", lr.Token, fields)
	wantStatus(t, r, http.StatusOK)
	got := r.Object(t)
	sent := (&reply{Body: []byte(object)}).Object(t)
	for k, v := range sent {
		if !jsonEqual(t, mustJSON(t, got[k]), mustJSON(t, v)) {
			t.Errorf("decrypted %s = %v, want %v", k, got[k], v)
		}
	}
	if got["openId"] != lr.OpenID {
		t.Errorf("decrypted openId %v, want %s", got["openId"], lr.OpenID)
	}
	if wm, _ := got["watermark"].(map[string]any); wm["appid"] != sandboxSiteAppID {
		t.Errorf("decrypted watermark %v, want appid %s", got["watermark"], sandboxSiteAppID)
	}

	t.Run("altered rawData", func(t *testing.T) {
		altered := map[string]string{}
		for k, v := range fields {
			altered[k] = v
		}
		altered["rawData"] = strings.Replace(object, `"gender":1`, `"gender":2`, 1)
		wantError(t, postJSON(t, st.Base+"/wx/userinfo", lr.Token, altered), http.StatusBadRequest, "signature_mismatch")
	})
	t.Run("another sandbox user cannot decrypt it", func(t *testing.T) {
		other := st.login(t, "eve")
		r := postJSON(t, st.Base+"/wx/userinfo", other.Token, fields)
		if r.Status != http.StatusBadRequest && r.Status != http.StatusForbidden {
			t.Errorf("another user's session decrypted the data: %d %s", r.Status, r.Body)
		}
	})
	t.Run("needs a token", func(t *testing.T) {
		wantError(t, post(t, st.Base+"/wx/sandbox/encrypt", "", "application/json", object), http.StatusUnauthorized, "unauthorized")
	})
	t.Run("refuses a body that is not an object", func(t *testing.T) {
		wantError(t, post(t, st.Base+"/wx/sandbox/encrypt", lr.Token, "application/json", `[1,2]`), http.StatusBadRequest, "invalid_request")
	})
	t.Run("refuses a name given twice", func(t *testing.T) {
		wantError(t, post(t, st.Base+"/wx/sandbox/encrypt", lr.Token, "application/json", `{"nickName":"a","nickName":"b"}`), http.StatusBadRequest, "invalid_request")
	})
}

func TestSandboxEncryptIsNotServedOutsideSandbox(t *testing.T) {
	st := startSandboxAndProduction(t)
	st.WeChat.AddCode(sandboxSiteAppID, "prod", wechattestUser())
	lr := loginAt(t, siteBase2, map[string]string{"code": "prod"})
	r := send(t, http.MethodPost, siteBase2+"/wx/sandbox/encrypt", http.Header{
		"Authorization": {"Bearer " + lr.Token}, "Content-Type": {"application/json"},
	}, `{"a":1}`)
	if strings.Contains(string(r.Body), "encryptedData") {
		t.Errorf("a production site encrypts with the session key: %s", r.Body)
	}
}

func TestSandboxAcceptsPhoneCodes(t *testing.T) {
	st := startSandboxAndProduction(t)
	lr := st.login(t, "frank")
	r := postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "phone-13800138000"})
	wantPhone(t, r, testPhoneOf("13800138000"))
}
