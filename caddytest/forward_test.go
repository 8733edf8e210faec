package caddytest

// Acceptance points covered here (issue 3, forward_profile):
//   - With forward_profile, decrypted user info goes to the next handler as
//     a POST with the decrypted JSON as its body (Content-Type
//     application/json) and the identity headers, without the token, and the
//     upstream's answer is what the client gets.
//   - The same for a phone number (from a phone code).
//   - Failures (bad data, no token) are answered by Caddy and never reach
//     the upstream.

import (
	"net/http"
	"strings"
	"testing"
)

func TestForwardProfileSendsDecryptedUserInfoUpstream(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\tforward_profile\n"})
	lr := loginVectorUser(t, st, "fwd")

	r := postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV})
	wantStatus(t, r, http.StatusOK)
	seen := r.Seen(t) // the client got the upstream's answer
	if seen.Method != http.MethodPost {
		t.Errorf("upstream got %s, want POST", seen.Method)
	}
	if ct := seen.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("upstream got Content-Type %q, want application/json", ct)
	}
	if !jsonEqual(t, []byte(seen.Body), []byte(vector.Plaintext)) {
		t.Errorf("upstream got body %s\nwant the decrypted profile %s", seen.Body, vector.Plaintext)
	}
	if strings.Contains(seen.Body, vector.EncryptedData[:32]) {
		t.Errorf("upstream got the ciphertext")
	}
	for h, want := range map[string]string{"X-Wx-Openid": vector.OpenID, "X-Wx-Appid": testAppID, "X-Wx-Unionid": vector.UnionID} {
		if got := seen.Header.Get(h); got != want {
			t.Errorf("upstream got %s %q, want %q", h, got, want)
		}
	}
	if v := seen.Header.Values("Authorization"); len(v) != 0 {
		t.Errorf("upstream got Authorization %q", v)
	}
}

func TestForwardProfileSendsPhoneUpstream(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\tforward_profile\n"})
	user := st.addUser("fwd-phone")
	lr := st.login(t, "fwd-phone")
	st.WeChat.AddPhoneCode("pc", testPhone)

	seen := postJSON(t, st.Base+"/wx/phone", lr.Token, map[string]string{"code": "pc"}).Seen(t)
	want := `{"phoneNumber":"` + testPhone.PhoneNumber + `","purePhoneNumber":"` + testPhone.PurePhoneNumber + `","countryCode":"86"}`
	if seen.Method != http.MethodPost || !jsonEqual(t, []byte(seen.Body), []byte(want)) {
		t.Errorf("upstream got %s %s, want POST %s", seen.Method, seen.Body, want)
	}
	if seen.Header.Get("X-Wx-Openid") != user.OpenID {
		t.Errorf("upstream got X-WX-OPENID %q, want %q", seen.Header.Get("X-Wx-Openid"), user.OpenID)
	}
}

func TestForwardProfileFailuresStayAtCaddy(t *testing.T) {
	st := startStack(t, stackConfig{Directive: "\t\tforward_profile\n"})
	lr := loginVectorUser(t, st, "fwd-fail")
	wantError(t, postJSON(t, st.Base+"/wx/userinfo", lr.Token, map[string]string{"encryptedData": tamper(t, -5), "iv": vector.IV}),
		http.StatusBadRequest, "decrypt_failed")
	wantError(t, postJSON(t, st.Base+"/wx/userinfo", "", map[string]string{"encryptedData": vector.EncryptedData, "iv": vector.IV}),
		http.StatusUnauthorized, "unauthorized")
	if n := st.Upstream.Count(); n != 0 {
		t.Errorf("%d failed requests reached the upstream", n)
	}
}
