package caddytest

// Acceptance points covered here:
//   - issue 2: login with a JSON body and with a form body returns token,
//     token_type Bearer, expires_in, openid, and unionid when WeChat gave one
//     (and no unionid when it did not).
//   - issue 2: a login code is single-use: a second login with it is 401
//     invalid_code.
//   - issue 3: 16 simultaneous logins with one code cause exactly one
//     jscode2session call, and all 16 get a working token.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

func TestLoginReturnsTokenForJSONAndFormBodies(t *testing.T) {
	st := startStack(t, stackConfig{})
	withUnion := st.WeChat.AddCode(testAppID, "code-json", wechattest.User{OpenID: randomOpenID(), UnionID: "uUnion123"})
	formUser := st.WeChat.AddCode(testAppID, "code-form", wechattest.User{OpenID: randomOpenID(), UnionID: "uUnion456"})
	noUnion := st.WeChat.AddCode(testAppID, "code-nounion", wechattest.User{OpenID: randomOpenID()})
	curlUser := st.WeChat.AddCode(testAppID, "code-curl", wechattest.User{OpenID: randomOpenID(), UnionID: "uUnion789"})

	tests := []struct {
		name  string
		send  func() *reply
		user  wechattest.User
		union bool
	}{
		{"json body", func() *reply { return postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "code-json"}) }, withUnion, true},
		{"form body", func() *reply { return postForm(t, st.Base+"/wx/login", "", url.Values{"code": {"code-form"}}) }, formUser, true},
		{"no unionid from WeChat", func() *reply { return postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "code-nounion"}) }, noUnion, false},
		// curl -d '{"code":…}' labels JSON as a form: it is read as JSON.
		{"JSON with the form content type", func() *reply {
			return post(t, st.Base+"/wx/login", "", "application/x-www-form-urlencoded", `{"code":"code-curl"}`)
		}, curlUser, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			wantStatus(t, r, http.StatusOK)
			body := r.Object(t)
			tok, _ := body["token"].(string)
			if tok == "" {
				t.Fatalf("no token: %s", r.Body)
			}
			// The token names the user, the app and the issuer,
			// and never holds the session_key.
			c := claimsOf(t, tok)
			if c["sub"] != tt.user.OpenID || c["iss"] != "wechat_auth" || !audienceIs(c, testAppID) {
				t.Errorf("token claims sub=%v iss=%v aud=%v, want %s, wechat_auth, %s", c["sub"], c["iss"], c["aud"], tt.user.OpenID, testAppID)
			}
			if strings.Contains(string(mustJSON(t, c)), tt.user.SessionKey) {
				t.Errorf("the token carries the session_key")
			}
			if body["token_type"] != "Bearer" {
				t.Errorf("token_type %v, want Bearer", body["token_type"])
			}
			if exp, _ := body["expires_in"].(float64); exp < 7000 || exp > 7200 {
				t.Errorf("expires_in %v, want about 7200 (the 2h default)", body["expires_in"])
			}
			if body["openid"] != tt.user.OpenID {
				t.Errorf("openid %v, want %s", body["openid"], tt.user.OpenID)
			}
			union, has := body["unionid"]
			switch {
			case tt.union && union != tt.user.UnionID:
				t.Errorf("unionid %v, want %s", union, tt.user.UnionID)
			case !tt.union && has:
				t.Errorf("unionid %v present though WeChat gave none", union)
			}
			if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store on an answer with a token", cc)
			}
		})
	}
}

func TestLoginRejectsUsedCode(t *testing.T) {
	st := startStack(t, stackConfig{})
	st.addUser("once")
	st.login(t, "once")
	r := postJSON(t, st.Base+"/wx/login", "", map[string]string{"code": "once"})
	body := wantError(t, r, http.StatusUnauthorized, "invalid_code")
	if body["wechat_errcode"] != float64(wechattest.ErrCodeUsed) {
		t.Errorf("wechat_errcode %v, want %d", body["wechat_errcode"], wechattest.ErrCodeUsed)
	}
}

func TestConcurrentLoginsWithOneCodeShareOneWeChatCall(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("shared-code")
	// WeChat answers slowly enough that all 16 logins are in flight at once.
	st.WeChat.SetDelay(300 * time.Millisecond)

	const n = 16
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		tokens = make([]string, n)
		errs   = make([]string, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := trySend(http.MethodPost, st.Base+"/wx/login",
				http.Header{"Content-Type": {"application/json"}}, `{"code":"shared-code"}`)
			switch {
			case err != nil:
				errs[i] = err.Error()
			case r.Status != http.StatusOK:
				errs[i] = string(r.Body)
			default:
				var lr loginResult
				if jsonErr := json.Unmarshal(r.Body, &lr); jsonErr != nil || lr.Token == "" {
					errs[i] = "no token: " + string(r.Body)
				}
				tokens[i] = lr.Token
			}
		}()
	}
	close(start)
	wg.Wait()
	st.WeChat.SetDelay(0)

	if calls := st.WeChat.Calls(wechattest.PathCode2Session); calls != 1 {
		t.Errorf("%d jscode2session calls for 16 logins with one code, want 1", calls)
	}
	for i := range n {
		if errs[i] != "" {
			t.Errorf("login %d failed: %s", i, errs[i])
			continue
		}
		r := get(t, st.Base+"/api/me", tokens[i])
		if r.Status != http.StatusOK || r.Seen(t).Header.Get("X-Wx-Openid") != user.OpenID {
			t.Errorf("token of login %d does not work: %d %s", i, r.Status, r.Body)
		}
	}
}

// audienceIs reports whether a token's aud claim is exactly appid.
func audienceIs(c map[string]any, appid string) bool {
	switch aud := c["aud"].(type) {
	case string:
		return aud == appid
	case []any:
		return len(aud) == 1 && aud[0] == appid
	}
	return false
}
