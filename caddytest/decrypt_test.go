package caddytest

// Acceptance points covered here:
//   - issue 2: /wx/userinfo decrypts WeChat's own published test vector for
//     the session's key (JSON body, and a form body whose base64 '+' arrived
//     unescaped); a tampered block gives 400 decrypt_failed; a short iv or a
//     partial block gives 400; another user's session cannot decrypt it
//     (different key: 400 decrypt_failed; same key but another openid: 403
//     watermark_mismatch); without a token, 401.
//   - issue 3: user info whose openId is another user's, or whose watermark
//     names another app, gives 403 watermark_mismatch.
//   - issue 3: WeChat's published rawData signature example is accepted, and
//     an altered rawData gives 400 signature_mismatch.
//   - issue 3: WeRun, share-info and group-enter payloads decrypt through
//     /wx/decrypt with unknown fields passed through untouched.

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-wechat/wechatauth/wechattest"
)

var vector = wechattest.UserInfoVector

// loginVectorUser registers the user of WeChat's published vector and logs
// them in.
func loginVectorUser(t *testing.T, st *stack, code string) loginResult {
	t.Helper()
	st.WeChat.AddCode(testAppID, code, wechattest.User{OpenID: vector.OpenID, UnionID: vector.UnionID, SessionKey: vector.SessionKey})
	return st.login(t, code)
}

func TestUserInfoDecryptsPublishedVector(t *testing.T) {
	st := startStack(t, stackConfig{})
	lr := loginVectorUser(t, st, "vector")

	t.Run("json body", func(t *testing.T) {
		r := postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV})
		wantStatus(t, r, http.StatusOK)
		if !jsonEqual(t, r.Body, []byte(vector.Plaintext)) {
			t.Errorf("decrypted %s\nwant %s", r.Body, vector.Plaintext)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q on personal data, want no-store", cc)
		}
	})
	t.Run("form body with unescaped plus signs", func(t *testing.T) {
		if !strings.Contains(vector.EncryptedData, "+") {
			t.Fatal("the vector has no '+' to repair")
		}
		// wx.request with the form content type sends base64 as is: '+'
		// arrives as a space.
		body := "encryptedData=" + vector.EncryptedData + "&iv=" + vector.IV
		r := post(t, st.Base+"/wx/userinfo", lr.Token, "application/x-www-form-urlencoded", body)
		wantStatus(t, r, http.StatusOK)
		if !jsonEqual(t, r.Body, []byte(vector.Plaintext)) {
			t.Errorf("decrypted %s\nwant %s", r.Body, vector.Plaintext)
		}
	})
}

// tamper returns the vector's ciphertext with byte i xor-ed with 1.
func tamper(t *testing.T, i int) string {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(vector.EncryptedData)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(ct)
	}
	ct[i] ^= 1
	return base64.StdEncoding.EncodeToString(ct)
}

func TestUserInfoRefusesDamagedData(t *testing.T) {
	st := startStack(t, stackConfig{})
	lr := loginVectorUser(t, st, "damaged")
	ct, _ := base64.StdEncoding.DecodeString(vector.EncryptedData)
	b64 := base64.StdEncoding.EncodeToString

	tests := []struct {
		name, data, iv string
		status         int
		code           string
	}{
		{"tampered first block", tamper(t, 3), vector.IV, 400, "decrypt_failed"},
		{"tampered padding via the second-last block", tamper(t, -17), vector.IV, 400, "decrypt_failed"},
		{"tampered last block", tamper(t, -5), vector.IV, 400, "decrypt_failed"},
		{"short iv", vector.EncryptedData, b64(make([]byte, 8)), 400, "decrypt_failed"},
		{"long iv", vector.EncryptedData, b64(make([]byte, 24)), 400, "decrypt_failed"},
		{"wrong iv", vector.EncryptedData, b64([]byte("0123456789abcdef")), 400, "decrypt_failed"},
		{"partial block", b64(ct[:len(ct)-5]), vector.IV, 400, "decrypt_failed"},
		{"one block short", b64(ct[:len(ct)-16]), vector.IV, 400, "decrypt_failed"},
		{"not base64", "%%%not-base64%%%", vector.IV, 400, "invalid_request"},
		{"iv not base64", vector.EncryptedData, "!!!", 400, "invalid_request"},
		{"no iv", vector.EncryptedData, "", 400, "invalid_request"},
		{"no data", "", vector.IV, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": tt.data, "iv": tt.iv})
			wantError(t, r, tt.status, tt.code)
			if strings.Contains(string(r.Body), "nickName") || strings.Contains(string(r.Body), "padding") {
				t.Errorf("error answer leaks plaintext or padding detail: %s", r.Body)
			}
		})
	}
}

func TestUserInfoOfAnotherUserCannotBeDecrypted(t *testing.T) {
	st := startStack(t, stackConfig{})
	loginVectorUser(t, st, "owner")
	fields := map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV}

	t.Run("another user's session key", func(t *testing.T) {
		st.addUser("stranger")
		other := st.login(t, "stranger")
		wantError(t, postJSON(t, st.Base+"/wx/userinfo", other.Token, fields), http.StatusBadRequest, "decrypt_failed")
	})
	t.Run("same key, another openid", func(t *testing.T) {
		st.addUserWithKey("twin", vector.SessionKey)
		twin := st.login(t, "twin")
		wantError(t, postJSON(t, st.Base+"/wx/userinfo", twin.Token, fields), http.StatusForbidden, "watermark_mismatch")
	})
	t.Run("no token", func(t *testing.T) {
		wantError(t, postJSON(t, st.Base+"/wx/userinfo", "", fields), http.StatusUnauthorized, "unauthorized")
	})
}

func TestOpenDataOfAnotherUserOrAppIsWatermarkMismatch(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("me")
	lr := st.login(t, "me")
	mark := map[string]any{"appid": testAppID, "timestamp": 1700000000}
	otherMark := map[string]any{"appid": "wx1111111111111111", "timestamp": 1700000000}

	tests := []struct {
		name, route string
		payload     map[string]any
		status      int
		code        string
	}{
		{"own data passes", "/wx/userinfo", map[string]any{"openId": user.OpenID, "nickName": "me", "watermark": mark}, 200, ""},
		{"another user's openId", "/wx/userinfo", map[string]any{"openId": randomOpenID(), "nickName": "x", "watermark": mark}, 403, "watermark_mismatch"},
		{"another app's watermark", "/wx/userinfo", map[string]any{"openId": user.OpenID, "watermark": otherMark}, 403, "watermark_mismatch"},
		{"another app's share info", "/wx/decrypt", map[string]any{"openGId": "tGabc", "watermark": otherMark}, 403, "watermark_mismatch"},
		{"not an object", "/wx/decrypt", nil, 400, "decrypt_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var enc, iv string
			if tt.payload == nil {
				enc, iv = encryptFor(t, user.SessionKey, []byte(`["an","array"]`))
			} else {
				enc, iv = encryptFor(t, user.SessionKey, tt.payload)
			}
			r := postJSON(t, st.Base+tt.route, lr.Token, map[string]string{"encryptedData": enc, "iv": iv})
			if tt.status == http.StatusOK {
				wantStatus(t, r, http.StatusOK)
				return
			}
			wantError(t, r, tt.status, tt.code)
		})
	}
}

func TestRawDataSignature(t *testing.T) {
	sv := wechattest.SignatureVector
	st := startStack(t, stackConfig{})
	st.addUserWithKey("signer", sv.SessionKey)
	lr := st.login(t, "signer")
	// What wx.getUserInfo gives alongside rawData: the same profile,
	// encrypted with the session key.
	enc, iv := encryptFor(t, sv.SessionKey, []byte(sv.RawData))

	tests := []struct {
		name, rawData, signature string
		status                   int
		code                     string
	}{
		{"published example", sv.RawData, sv.Signature, 200, ""},
		{"upper-case hex signature", sv.RawData, strings.ToUpper(sv.Signature), 200, ""},
		{"altered rawData", strings.Replace(sv.RawData, "Band", "Bond", 1), sv.Signature, 400, "signature_mismatch"},
		{"altered signature", sv.RawData, "0" + sv.Signature[1:], 400, "signature_mismatch"},
		{"rawData without signature", sv.RawData, "", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, form := range []bool{false, true} {
				fields := map[string]string{"encryptedData": enc, "iv": iv, "rawData": tt.rawData, "signature": tt.signature}
				var r *reply
				if form {
					r = postForm(t, st.Base+"/wx/userinfo", lr.Token, toValues(fields))
				} else {
					r = postJSON(t, st.Base+"/wx/userinfo", lr.Token, fields)
				}
				if tt.status == http.StatusOK {
					wantStatus(t, r, http.StatusOK)
					if !jsonEqual(t, r.Body, []byte(sv.RawData)) {
						t.Errorf("decrypted %s, want %s", r.Body, sv.RawData)
					}
					continue
				}
				wantError(t, r, tt.status, tt.code)
			}
		})
	}
}

func TestDecryptPassesOpenDataThrough(t *testing.T) {
	st := startStack(t, stackConfig{})
	user := st.addUser("data")
	lr := st.login(t, "data")
	mark := `"watermark":{"appid":"` + testAppID + `","timestamp":1700000000}`

	payloads := map[string]string{
		"WeRun without watermark": `{"stepInfoList":[{"timestamp":1445866601,"step":100},{"timestamp":1445876601,"step":120}],"futureField":{"nested":[1,2,3]}}`,
		"WeRun with watermark":    `{"stepInfoList":[{"timestamp":1445866601,"step":100}],` + mark + `}`,
		"share info":              `{"openGId":"tGabcdefgh0123456789","unknownField":"kept","number":1.5,` + mark + `}`,
		"group enter info":        `{"opengid":"tGzyx","chat_type":1,"extra":null,` + mark + `}`,
	}
	for name, p := range payloads {
		t.Run(name, func(t *testing.T) {
			enc, iv := encryptFor(t, user.SessionKey, []byte(p))
			r := postJSON(t, st.Base+"/wx/decrypt", lr.Token, map[string]string{"encryptedData": enc, "iv": iv})
			wantStatus(t, r, http.StatusOK)
			if !jsonEqual(t, r.Body, []byte(p)) {
				t.Errorf("decrypted %s\nwant %s", r.Body, p)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		wantError(t, postJSON(t, st.Base+"/wx/decrypt", "", map[string]string{"encryptedData": "x", "iv": "y"}), http.StatusUnauthorized, "unauthorized")
	})
}
